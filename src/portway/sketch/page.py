"""The sketcher's page (``/ui/sketch``): one self-contained HTML page with its script and
style, no CDN. It holds no secrets: it asks for an API key (kept in the browser's
local storage) and calls `/v1/sketches` like any client."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

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


@router.get("/ui/sketch")
async def sketch_page() -> Response:
    return FileResponse(STATIC / "sketch.html", media_type="text/html", headers=_HEADERS)


@router.get("/ui/sketch/static/{name}")
async def sketch_static(name: str) -> Response:
    media_type = _FILES.get(name)
    if media_type is None:
        raise NotFoundError(f"No such file: {name}", code=None)
    return FileResponse(STATIC / name, media_type=media_type, headers=_HEADERS)
