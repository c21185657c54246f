"""The console's wiring: sessions, the serving class, templates and the page context."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from portway.console.requests import RequestLogReader
from portway.console.service import ConsoleService
from portway.console.session import COOKIE, CSRF_HEADER, SESSION_SECONDS, ConsoleAuth, Session
from portway.security.auth import KeyAuthenticator
from portway.security.principal import Principal
from portway.services import Services

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
SECURITY_HEADERS = {
    # Scripts and styles only from Portway itself: no CDN, and no injected inline script.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Page:
    """Who is looking at a page and the token its forms must send back."""

    session: Session
    principal: Principal
    csrf: str
    # Set when this request created the session (an open server): the response sends it.
    new_cookie: str | None = None
    secure: bool = False

    @property
    def who(self) -> str:
        if self.principal.kind == "virtual_key":
            return self.principal.key_id or "virtual key"
        return "master key" if self.principal.kind == "master" else "open server"


def _when(value: float | None) -> str:
    if not value:
        return "—"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0.00"
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"


def _pretty(value: Any) -> str:
    """JSON for people to read; autoescaping makes it safe in HTML."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _asset_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.glob("*.*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


class Console:
    """Everything the console's router needs, built once with the app."""

    def __init__(self, services: Services, app: ASGIApp) -> None:
        """``app``: the FastAPI app whose admin routes the request log pages read."""
        master = services.settings.master_key
        authenticator = services.authenticator
        assert isinstance(authenticator, KeyAuthenticator)
        self.auth = ConsoleAuth(
            authenticator,
            services.accounting.keys,
            master.get_secret_value() if master else None,
        )
        self.service = ConsoleService(services)
        self.requests = RequestLogReader(app)
        self._templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(("html",)),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters.update(when=_when, number=_number, usd=_usd, pretty=_pretty)
        self._templates.globals["asset_version"] = _asset_version()

    def render(
        self, name: str, page: Page | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        html = self._templates.get_template(name).render(page=page, **context)
        response = HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
        if page is not None and page.new_cookie is not None:
            self._cookie(response, page.new_cookie, page.secure)
        return response

    async def page(self, request: Request) -> Page | None:
        """The signed-in caller, or None (the route then redirects to the login page)."""
        session = self.auth.session_of(request.scope)
        new_cookie = None
        if session is None and self.auth.open:
            session = self.auth.anonymous()
            new_cookie = self.auth.codec.encode(session)
        if session is None:
            return None
        principal = await self.auth.principal(session)
        if principal is None:
            return None
        csrf = self.auth.codec.csrf_token(session)
        return Page(session, principal, csrf, new_cookie, request.url.scheme == "https")

    def set_cookie(self, response: Response, session: Session, request: Request) -> None:
        self._cookie(response, self.auth.codec.encode(session), request.url.scheme == "https")

    @staticmethod
    def _cookie(response: Response, value: str, secure: bool) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure,
        )

    @staticmethod
    def clear_cookie(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")

    def write_allowed(self, request: Request, page: Page, form_token: str | None) -> bool:
        """A write carries the session's CSRF token and, if the browser says, our origin."""
        if not same_origin(request):
            return False
        token = form_token or request.headers.get(CSRF_HEADER)
        return self.auth.codec.csrf_ok(page.session, token)


def same_origin(request: Request) -> bool:
    """False when the browser names another site as the origin of this request."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "")


def login_redirect() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=303)
