"""The admin API (`/v1/admin/...`, master key only) and `GET /v1/usage` for any key.

Budgets for keys, users and teams (keys themselves: ``portway.keys.router``). Usage with
filters, grouping and CSV. Queue statistics.
A virtual key calling `/v1/usage` sees only its own usage, whatever filters it sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.accounting.pricing import nanos
from portway.accounting.reports import (
    parse_group_by,
    present,
    to_csv,
    usage_filter,
)
from portway.api.deps import admin_services, principal_of, services_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.errors import InvalidRequestError, NotFoundError
from portway.keys.render import budget_object
from portway.keys.serving import key_not_found
from portway.protocol.admin import BudgetSet
from portway.services import Services

router = APIRouter()
SCOPES = ("user", "team", "key")


async def _audit(request: Request, action: str, subject: str, details: dict[str, Any]) -> None:
    """Append the admin action to the audit log (never a secret: summaries only)."""
    await services_of(request).audit.record(action, principal_of(request), subject, details)


# Budgets ------------------------------------------------------------------------------


def _scope(scope: str) -> str:
    if scope not in SCOPES:
        raise NotFoundError(f"Unknown budget scope `{scope}`; use one of {', '.join(SCOPES)}.")
    return scope


@router.get("/v1/admin/budgets")
async def list_budgets(request: Request) -> Response:
    services = admin_services(request)
    scope = request.query_params.get("scope")
    await services.accounting.settle_now()
    budgets = await services.accounting.budgets.list(_scope(scope) if scope else None)
    return JSONResponse({"object": "list", "data": [budget_object(b) for b in budgets]})


@router.put("/v1/admin/budgets/{scope}/{subject}")
async def set_budget(request: Request, scope: str, subject: str) -> Response:
    services = admin_services(request)
    body = await read_body(request, BudgetSet)
    if _scope(scope) == "key" and await services.accounting.keys.keys.get(subject) is None:
        raise key_not_found(subject)
    await services.accounting.budgets.set(scope, subject, nanos(body.max_budget), body.period)
    await _audit(
        request,
        "budget.set",
        f"{scope}:{subject}",
        {"max_budget": body.max_budget, "period": body.period},
    )
    await services.accounting.settle_now()  # spare slices must not outlive a lower limit
    return JSONResponse(budget_object(await services.accounting.budgets.get(scope, subject)))


@router.get("/v1/admin/budgets/{scope}/{subject}")
async def retrieve_budget(request: Request, scope: str, subject: str) -> Response:
    services = admin_services(request)
    await services.accounting.settle_now()
    budget = await services.accounting.budgets.get(_scope(scope), subject)
    if budget is None:
        raise NotFoundError(f"No budget for {scope} `{subject}`.")
    return JSONResponse(budget_object(budget))


@router.delete("/v1/admin/budgets/{scope}/{subject}")
async def delete_budget(request: Request, scope: str, subject: str) -> Response:
    services = admin_services(request)
    if not await services.accounting.budgets.delete(_scope(scope), subject):
        raise NotFoundError(f"No budget for {scope} `{subject}`.")
    await _audit(request, "budget.delete", f"{scope}:{subject}", {})
    return JSONResponse({"object": "portway.budget.deleted", "scope": scope, "subject": subject})


@router.post("/v1/admin/budgets/{scope}/{subject}/reset")
async def reset_budget(request: Request, scope: str, subject: str) -> Response:
    services = admin_services(request)
    if not await services.accounting.budgets.reset(_scope(scope), subject):
        raise NotFoundError(f"No budget for {scope} `{subject}`.")
    await _audit(request, "budget.reset", f"{scope}:{subject}", {})
    return JSONResponse(budget_object(await services.accounting.budgets.get(scope, subject)))


# Usage and queues ---------------------------------------------------------------------


async def _usage(request: Request, services: Services, forced_key: str | None) -> Response:
    params = dict(request.query_params)
    if forced_key is not None:
        params["key"] = forced_key
    try:
        where = usage_filter(params)
    except ValueError as exc:
        raise InvalidRequestError(f"Invalid time filter: {exc}", param="since") from None
    try:
        group_by = parse_group_by(params.get("group_by"))
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="group_by") from None
    raw_limit = params.get("limit") or "10000"
    if not raw_limit.isdigit():
        raise InvalidRequestError("limit must be a positive integer.", param="limit")
    limit = min(int(raw_limit), 100_000)
    await services.accounting.ledger.flush()  # this process's latest rows are included
    items = [present(s) for s in await services.accounting.usage.summary(where, group_by, limit)]
    if params.get("format") == "csv":
        return Response(
            to_csv(items, group_by),
            media_type="text/csv",
            headers={"content-disposition": 'attachment; filename="usage.csv"'},
        )
    return JSONResponse({"object": "list", "group_by": group_by, "data": items})


@router.get("/v1/admin/usage")
async def admin_usage(request: Request) -> Response:
    return await _usage(request, admin_services(request), None)


@router.get("/v1/usage")
async def own_usage(request: Request) -> Response:
    """Admins see everything; a virtual key only its own rows."""
    principal = principal_of(request)
    forced = None if principal.is_admin else principal.key_id
    return await _usage(request, services_of(request), forced)


@router.get("/v1/admin/queues")
async def queues(request: Request) -> Response:
    services = admin_services(request)
    return JSONResponse(
        {
            "object": "portway.queues",
            "deployments": services.accounting.gate.stats(),
            "ledger_queued": services.accounting.ledger.queued,
        }
    )
