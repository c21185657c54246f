"""The sketcher's page (``/ui/sketch``): one self-contained HTML page with its script and
style, no CDN. Signed in to the console, it calls `/v1/sketches` with the console's
session (its cookie plus the CSRF token the page is given); otherwise it asks for an API
key, kept in the tab's session storage only."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from portway.errors import NotFoundError

router = APIRouter()

STATIC = Path(__file__).parent / "static"
_FILES = {
    "sketch.js": "text/javascript; charset=utf-8",
    "sketch.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    # Everything comes from this server; the diagram is inline SVG.
    "content-security-policy": "default-src 'self'; img-src 'self' blob: data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
}


_PAGE = (STATIC / "sketch.html").read_text(encoding="utf-8")
_SESSION_SLOT = "<!-- portway-session -->"


@router.get("/ui/sketch")
async def sketch_page(request: Request) -> Response:
    console = getattr(request.app.state, "console", None)
    session = console.auth.session_of(request.scope) if console is not None else None
    if session is None:
        return HTMLResponse(_PAGE, headers=_HEADERS)
    token = escape(console.auth.codec.csrf_token(session), quote=True)
    page = _PAGE.replace(_SESSION_SLOT, f'<meta name="portway-csrf" content="{token}">')
    return HTMLResponse(page, headers=_HEADERS)


@router.get("/ui/sketch/static/{name}")
async def sketch_static(name: str) -> Response:
    media_type = _FILES.get(name)
    if media_type is None:
        raise NotFoundError(f"No such file: {name}", code=None)
    return FileResponse(STATIC / name, media_type=media_type, headers=_HEADERS)
