"""The console's HTTP routes (`/ui/...`): parse, call ``ConsoleService``, render a template.

Sessions, CSRF and admin checks are the dependencies of ``portway.console.guards``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from portway.console.guards import (
    Admin,
    AdminWrite,
    ConsoleOf,
    ConsoleRequest,
    ConsoleRoute,
    FormFields,
    SignedIn,
    Visitor,
    forbidden_page,
)
from portway.console.requests import RANGES as REQUEST_RANGES
from portway.console.service import ConsoleInputError, KeyChange
from portway.console.web import same_origin

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


@router.get("/")
async def root() -> Response:
    return RedirectResponse("/ui", status_code=307)


# Sessions ---------------------------------------------------------------------------


@router.get("/ui/login")
async def login_form(console: ConsoleOf) -> Response:
    return console.render("login.html", None, open_server=console.auth.open)


@router.post("/ui/login")
async def login(request: Request, console: ConsoleOf) -> Response:
    if not same_origin(request):
        return forbidden_page(console, None)
    key = (await request.form()).get("key")
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
async def logout(
    request: Request, console: ConsoleOf, caller: Visitor, form: FormFields
) -> Response:
    """Signed out already, there is nothing to protect: only a session's logout needs its token."""
    if caller is not None and not caller.console.write_allowed(
        request, caller.page, form.get("csrf")
    ):
        return forbidden_page(caller.console, caller.page)
    response = RedirectResponse("/ui/login", status_code=303)
    console.clear_cookie(response)
    return response


# Pages ------------------------------------------------------------------------------


@router.get("/ui")
async def overview(request: Request, ui: SignedIn) -> Response:
    data = await ui.console.service.overview(ui.principal, request.query_params.get("window"))
    return ui.render("overview.html", nav="overview", **data)


@router.get("/ui/deployments")
async def deployments(ui: Admin) -> Response:
    rows = await ui.console.service.deployments()
    return ui.render("deployments.html", nav="deployments", rows=rows)


@router.get("/ui/deployments/table")
async def deployments_table(caller: Visitor) -> Response:
    """The live part of the deployments page (htmx polls it): nothing for anyone else."""
    if caller is None or not caller.principal.is_admin:
        return Response(status_code=204)
    rows = await caller.console.service.deployments()
    return caller.render("_deployments_table.html", rows=rows)


@router.get("/ui/keys")
async def keys(request: Request, ui: SignedIn) -> Response:
    number = request.query_params.get("page", "0")
    return await _keys_page(ui, number=int(number) if number.isdigit() else 0)


async def _keys_page(
    ui: ConsoleRequest,
    *,
    change: KeyChange | None = None,
    action: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    number: int = 0,
) -> Response:
    rows, more = await ui.console.service.keys(ui.principal, number)
    return ui.render(
        "keys.html",
        status_code=status_code,
        nav="keys",
        rows=rows,
        number=number,
        more=more,
        change=change,
        action=action,
        error=error,
    )


@router.post("/ui/keys")
async def create_key(ui: AdminWrite, form: FormFields) -> Response:
    try:
        change = await ui.console.service.create_key(ui.principal, form)
    except ConsoleInputError as error:
        return await _keys_page(ui, error=str(error), status_code=400)
    return await _keys_page(ui, change=change, action="created")


@router.post("/ui/keys/{key_id}/revoke")
async def revoke_key(ui: AdminWrite, key_id: str) -> Response:
    change = await ui.console.service.revoke_key(ui.principal, key_id)
    if change is None:
        return await _keys_page(ui, error="No such key.", status_code=404)
    return await _keys_page(ui, change=change, action="revoked")


@router.post("/ui/keys/{key_id}/rotate")
async def rotate_key(ui: AdminWrite, key_id: str) -> Response:
    change = await ui.console.service.rotate_key(ui.principal, key_id)
    if change is None:
        return await _keys_page(
            ui, error="No such active key (a revoked key cannot be rotated).", status_code=404
        )
    return await _keys_page(ui, change=change, action="rotated")


@router.get("/ui/keys/{key_id}/edit")
async def edit_key(ui: Admin, key_id: str) -> Response:
    key = await ui.console.service.key(key_id)
    if key is None:
        return await _keys_page(ui, error="No such key.", status_code=404)
    return ui.render("key_edit.html", nav="keys", key=key)


@router.post("/ui/keys/{key_id}")
async def update_key(ui: AdminWrite, form: FormFields, key_id: str) -> Response:
    try:
        change = await ui.console.service.update_key(ui.principal, key_id, form)
    except ConsoleInputError as error:
        return await _keys_page(ui, error=str(error), status_code=400)
    if change is None:
        return await _keys_page(ui, error="No such key.", status_code=404)
    return await _keys_page(ui, change=change, action="updated")


@router.get("/ui/usage")
async def usage(request: Request, ui: SignedIn) -> Response:
    data = await ui.console.service.usage(ui.principal, request.query_params)
    return ui.render("usage.html", nav="usage", query=str(request.query_params), **data)


@router.get("/ui/usage.csv")
async def usage_csv(request: Request, ui: SignedIn) -> Response:
    body = await ui.console.service.usage_csv(ui.principal, request.query_params)
    return Response(
        body,
        media_type="text/csv",
        headers={"content-disposition": 'attachment; filename="usage.csv"'},
    )


@router.get("/ui/requests")
async def request_log(request: Request, ui: SignedIn) -> Response:
    params = dict(request.query_params)
    range_name = params.get("range") or "24h"
    seconds = REQUEST_RANGES.get(range_name, REQUEST_RANGES["24h"])
    if seconds is not None and not params.get("since"):
        params["since"] = str(int(time.time() - seconds))
    answer = await ui.console.requests.page(ui.principal, params)
    return ui.render(
        "requests.html",
        status_code=200 if answer.status < 500 else 502,
        nav="requests",
        answer=answer,
        params=params,
        range=range_name,
        ranges=REQUEST_RANGES,
    )


@router.get("/ui/requests/{request_id}")
async def request_detail(ui: SignedIn, request_id: str) -> Response:
    answer = await ui.console.requests.entry(ui.principal, request_id)
    status = answer.status if answer.status in (200, 404) else 502
    return ui.render("request_detail.html", status_code=status, nav="requests", answer=answer)


@router.get("/ui/playground")
async def playground(ui: SignedIn) -> Response:
    models = ui.console.service.models(ui.principal)
    return ui.render("playground.html", nav="playground", models=models)
