"""Who may open a console page or send its form: the checks every console route shares.

Contract: routes receive these as FastAPI dependencies. A check that refuses raises
``Refused`` carrying the console's own answer (the redirect to the login page, the 403
page of a write without its CSRF token, the 404 page of an admin page asked for by a
virtual key); ``ConsoleRoute`` returns that answer, so a handler runs only for a caller
it serves. The checks run in this order: session, then CSRF token and origin, then admin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, Response

from portway.console.web import Console, Page, login_redirect
from portway.security.principal import Principal


class Refused(Exception):
    """A check's answer in place of the page."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class ConsoleRoute(APIRoute):
    """A console route: a ``Refused`` raised by its dependencies becomes its response."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Refused as refused:
                return refused.response

        return handle


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


ConsoleOf = Annotated[Console, Depends(console_of)]


def forbidden_page(console: Console, page: Page | None) -> HTMLResponse:
    return console.render(
        "error.html",
        page,
        status_code=403,
        title="Forbidden",
        message="This form has expired or did not come from this console. Reload and retry.",
    )


def admin_only_page(console: Console, page: Page) -> HTMLResponse:
    return console.render(
        "error.html",
        page,
        status_code=404,
        title="Not found",
        message="This page needs the master key.",
    )


@dataclass(frozen=True, slots=True)
class ConsoleRequest:
    """A signed-in caller: the console, the page context and a renderer bound to both."""

    console: Console
    page: Page

    @property
    def principal(self) -> Principal:
        return self.page.principal

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """``template`` (a page or an htmx fragment) with the page context and cookie."""
        return self.console.render(template, self.page, status_code, **context)


async def visitor(request: Request, console: ConsoleOf) -> ConsoleRequest | None:
    """The signed-in caller, or None; an open server signs every caller in."""
    page = await console.page(request)
    return None if page is None else ConsoleRequest(console, page)


Visitor = Annotated[ConsoleRequest | None, Depends(visitor)]


async def signed_in(caller: Visitor) -> ConsoleRequest:
    if caller is None:
        raise Refused(login_redirect())
    return caller


SignedIn = Annotated[ConsoleRequest, Depends(signed_in)]


def _require_admin(caller: ConsoleRequest) -> ConsoleRequest:
    if not caller.principal.is_admin:
        raise Refused(admin_only_page(caller.console, caller.page))
    return caller


async def admin(caller: SignedIn) -> ConsoleRequest:
    return _require_admin(caller)


Admin = Annotated[ConsoleRequest, Depends(admin)]


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields (Starlette caches the parsed form per request)."""
    return {name: value for name, value in (await request.form()).items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(form_fields)]


async def csrf_checked(request: Request, caller: SignedIn, form: FormFields) -> ConsoleRequest:
    """A signed-in write that carries the session's CSRF token and comes from our origin."""
    if not caller.console.write_allowed(request, caller.page, form.get("csrf")):
        raise Refused(forbidden_page(caller.console, caller.page))
    return caller


CsrfChecked = Annotated[ConsoleRequest, Depends(csrf_checked)]


async def admin_write(caller: CsrfChecked) -> ConsoleRequest:
    """A key change: signed in, then the CSRF check, then the admin check (403 before 404)."""
    return _require_admin(caller)


AdminWrite = Annotated[ConsoleRequest, Depends(admin_write)]
