"""The console's HTTP routes (`/ui/...`): parse, call ``ConsoleService``, render a template."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from portway.console.requests import RANGES as REQUEST_RANGES
from portway.console.service import ConsoleInputError, KeyChange
from portway.console.web import Console, Page, login_redirect, same_origin

router = APIRouter(include_in_schema=False)


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def _forbidden(console: Console, page: Page | None) -> Response:
    return console.render(
        "error.html",
        page,
        status_code=403,
        title="Forbidden",
        message="This form has expired or did not come from this console. Reload and retry.",
    )


def _admin_only(console: Console, page: Page) -> Response:
    return console.render(
        "error.html",
        page,
        status_code=404,
        title="Not found",
        message="This page needs the master key.",
    )


@router.get("/")
async def root() -> Response:
    return RedirectResponse("/ui", status_code=307)


# Sessions ---------------------------------------------------------------------------


@router.get("/ui/login")
async def login_form(request: Request) -> Response:
    console = console_of(request)
    return console.render("login.html", None, open_server=console.auth.open)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    if not same_origin(request):
        return _forbidden(console, None)
    form = await request.form()
    key = form.get("key")
    session = await console.auth.login(key if isinstance(key, str) else "")
    if session is None:
        return console.render(
            "login.html",
            None,
            status_code=401,
            error="That key is not valid (unknown, revoked or expired).",
            open_server=console.auth.open,
        )
    response = RedirectResponse("/ui", status_code=303)
    console.set_cookie(response, session, request)
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    console = console_of(request)
    page = await console.page(request)
    form = await request.form()
    token = form.get("csrf")
    if page is not None and not console.write_allowed(
        request, page, token if isinstance(token, str) else None
    ):
        return _forbidden(console, page)
    response = RedirectResponse("/ui/login", status_code=303)
    console.clear_cookie(response)
    return response


# Pages ------------------------------------------------------------------------------


@router.get("/ui")
async def overview(request: Request) -> Response:
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    data = await console.service.overview(page.principal, request.query_params.get("window"))
    return console.render("overview.html", page, nav="overview", **data)


@router.get("/ui/deployments")
async def deployments(request: Request) -> Response:
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    if not page.principal.is_admin:
        return _admin_only(console, page)
    rows = await console.service.deployments()
    return console.render("deployments.html", page, nav="deployments", rows=rows)


@router.get("/ui/deployments/table")
async def deployments_table(request: Request) -> Response:
    """The live part of the deployments page (htmx polls it)."""
    console = console_of(request)
    page = await console.page(request)
    if page is None or not page.principal.is_admin:
        return Response(status_code=204)
    rows = await console.service.deployments()
    return console.render("_deployments_table.html", page, rows=rows)


@router.get("/ui/keys")
async def keys(request: Request) -> Response:
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    number = request.query_params.get("page", "0")
    return await _keys_page(console, page, number=int(number) if number.isdigit() else 0)


async def _keys_page(
    console: Console,
    page: Page,
    *,
    change: KeyChange | None = None,
    action: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    number: int = 0,
) -> Response:
    rows, more = await console.service.keys(page.principal, number)
    return console.render(
        "keys.html",
        page,
        status_code=status_code,
        nav="keys",
        rows=rows,
        number=number,
        more=more,
        change=change,
        action=action,
        error=error,
    )


KeyWrite = tuple[Console, Page, dict[str, str]]


async def _key_write(request: Request) -> KeyWrite | Response:
    """The console, page and form of a key action, or the response that refuses it."""
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    form = {name: value for name, value in (await request.form()).items() if isinstance(value, str)}
    if not console.write_allowed(request, page, form.get("csrf")):
        return _forbidden(console, page)
    if not page.principal.is_admin:
        return _admin_only(console, page)
    return console, page, form


@router.post("/ui/keys")
async def create_key(request: Request) -> Response:
    checked = await _key_write(request)
    if isinstance(checked, Response):
        return checked
    console, page, form = checked
    try:
        change = await console.service.create_key(page.principal, form)
    except ConsoleInputError as error:
        return await _keys_page(console, page, error=str(error), status_code=400)
    return await _keys_page(console, page, change=change, action="created")


@router.post("/ui/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    checked = await _key_write(request)
    if isinstance(checked, Response):
        return checked
    console, page, _ = checked
    change = await console.service.revoke_key(page.principal, key_id)
    if change is None:
        return await _keys_page(console, page, error="No such key.", status_code=404)
    return await _keys_page(console, page, change=change, action="revoked")


@router.post("/ui/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str) -> Response:
    checked = await _key_write(request)
    if isinstance(checked, Response):
        return checked
    console, page, _ = checked
    change = await console.service.rotate_key(page.principal, key_id)
    if change is None:
        return await _keys_page(
            console,
            page,
            error="No such active key (a revoked key cannot be rotated).",
            status_code=404,
        )
    return await _keys_page(console, page, change=change, action="rotated")


@router.get("/ui/keys/{key_id}/edit")
async def edit_key(request: Request, key_id: str) -> Response:
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    if not page.principal.is_admin:
        return _admin_only(console, page)
    key = await console.service.key(key_id)
    if key is None:
        return await _keys_page(console, page, error="No such key.", status_code=404)
    return console.render("key_edit.html", page, nav="keys", key=key)


@router.post("/ui/keys/{key_id}")
async def update_key(request: Request, key_id: str) -> Response:
    checked = await _key_write(request)
    if isinstance(checked, Response):
        return checked
    console, page, form = checked
    try:
        change = await console.service.update_key(page.principal, key_id, form)
    except ConsoleInputError as error:
        return await _keys_page(console, page, error=str(error), status_code=400)
    if change is None:
        return await _keys_page(console, page, error="No such key.", status_code=404)
    return await _keys_page(console, page, change=change, action="updated")


@router.get("/ui/usage")
async def usage(request: Request) -> Response:
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    data = await console.service.usage(page.principal, request.query_params)
    return console.render("usage.html", page, nav="usage", query=str(request.query_params), **data)


@router.get("/ui/usage.csv")
async def usage_csv(request: Request) -> Response:
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    body = await console.service.usage_csv(page.principal, request.query_params)
    return Response(
        body,
        media_type="text/csv",
        headers={"content-disposition": 'attachment; filename="usage.csv"'},
    )


@router.get("/ui/requests")
async def request_log(request: Request) -> Response:
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    params = dict(request.query_params)
    range_name = params.get("range") or "24h"
    seconds = REQUEST_RANGES.get(range_name, REQUEST_RANGES["24h"])
    if seconds is not None and not params.get("since"):
        params["since"] = str(int(time.time() - seconds))
    answer = await console.requests.page(page.principal, params)
    return console.render(
        "requests.html",
        page,
        status_code=200 if answer.status < 500 else 502,
        nav="requests",
        answer=answer,
        params=params,
        range=range_name,
        ranges=REQUEST_RANGES,
    )


@router.get("/ui/requests/{request_id}")
async def request_detail(request: Request, request_id: str) -> Response:
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    answer = await console.requests.entry(page.principal, request_id)
    status = answer.status if answer.status in (200, 404) else 502
    return console.render(
        "request_detail.html", page, status_code=status, nav="requests", answer=answer
    )


@router.get("/ui/playground")
async def playground(request: Request) -> Response:
    console = console_of(request)
    page = await console.page(request)
    if page is None:
        return login_redirect()
    models = console.service.models(page.principal)
    return console.render("playground.html", page, nav="playground", models=models)
