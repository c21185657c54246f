"""The admin API (`/v1/admin/...`, master key only) and `GET /v1/usage` for any key.

Keys: create (the secret is in this one response), list, retrieve, update, revoke, rotate.
Budgets for users and teams. Usage with filters, grouping and CSV. Queue statistics.
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
from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from portway.protocol.admin import BudgetSet, KeyCreate, KeyUpdate
from portway.security.admin_json import (
    budget_json,
    budget_spec,
    key_fields,
    key_json,
    key_summary,
)
from portway.security.keys import BudgetSpec
from portway.services import Services

router = APIRouter()
SCOPES = ("user", "team", "key")


def _admin(request: Request) -> Services:
    if not principal_of(request).is_admin:
        raise PermissionDeniedError(
            "You have insufficient permissions for this operation: it needs the master key."
        )
    return services_of(request)


async def _audit(request: Request, action: str, subject: str, details: dict[str, Any]) -> None:
    """Append the admin action to the audit log (never a secret: summaries only)."""
    await services_of(request).audit.record(action, principal_of(request), subject, details)


def _key_not_found(key_id: str) -> NotFoundError:
    return NotFoundError(f"No API key with id `{key_id}`.", param="key_id")


# Keys --------------------------------------------------------------------------------


@router.post("/v1/admin/keys")
async def create_key(request: Request) -> Response:
    services = _admin(request)
    body = await read_body(request, KeyCreate)
    record, secret = await services.accounting.keys.create(key_fields(body), budget_spec(body))
    await _audit(request, "key.create", record.id, key_summary(record))
    return JSONResponse(key_json(record, secret), status_code=201)


@router.get("/v1/admin/keys")
async def list_keys(request: Request) -> Response:
    services = _admin(request)
    params = request.query_params
    await services.accounting.settle_now()
    records = await services.accounting.keys.keys.list(
        user_id=params.get("user"),
        team_id=params.get("team"),
        include_revoked=params.get("include_revoked", "true").lower() != "false",
    )
    return JSONResponse({"object": "list", "data": [key_json(record) for record in records]})


@router.get("/v1/admin/keys/{key_id}")
async def retrieve_key(request: Request, key_id: str) -> Response:
    services = _admin(request)
    await services.accounting.settle_now()
    record = await services.accounting.keys.keys.get(key_id)
    if record is None:
        raise _key_not_found(key_id)
    return JSONResponse(key_json(record))


@router.patch("/v1/admin/keys/{key_id}")
@router.post("/v1/admin/keys/{key_id}")
async def update_key(request: Request, key_id: str) -> Response:
    services = _admin(request)
    body = await read_body(request, KeyUpdate)
    budget: BudgetSpec | Any = "keep"
    if "max_budget" in body.model_fields_set:
        if body.max_budget is None:
            budget = "remove"
        else:
            budget = BudgetSpec(nanos(body.max_budget), body.budget_period or "monthly")
    record = await services.accounting.keys.update(key_id, body.changes(), budget)
    if record is None:
        raise _key_not_found(key_id)
    if budget != "keep":
        await services.accounting.settle_now()  # spare slices must not outlive a lower limit
    changed = sorted(body.model_fields_set)
    await _audit(request, "key.update", key_id, {"fields": changed, **key_summary(record)})
    return JSONResponse(key_json(record))


@router.delete("/v1/admin/keys/{key_id}")
@router.post("/v1/admin/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    services = _admin(request)
    record = await services.accounting.keys.revoke(key_id)
    if record is None:
        raise _key_not_found(key_id)
    await _audit(request, "key.revoke", key_id, {})
    return JSONResponse(key_json(record))


@router.post("/v1/admin/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str) -> Response:
    services = _admin(request)
    rotated = await services.accounting.keys.rotate(key_id)
    if rotated is None:
        if await services.accounting.keys.keys.get(key_id) is None:
            raise _key_not_found(key_id)
        raise InvalidRequestError("A revoked key cannot be rotated.", code="key_revoked")
    record, secret = rotated
    await _audit(request, "key.rotate", key_id, {"prefix": record.prefix})
    return JSONResponse(key_json(record, secret))


# Budgets ------------------------------------------------------------------------------


def _scope(scope: str) -> str:
    if scope not in SCOPES:
        raise NotFoundError(f"Unknown budget scope `{scope}`; use one of {', '.join(SCOPES)}.")
    return scope


@router.get("/v1/admin/budgets")
async def list_budgets(request: Request) -> Response:
    services = _admin(request)
    scope = request.query_params.get("scope")
    await services.accounting.settle_now()
    budgets = await services.accounting.budgets.list(_scope(scope) if scope else None)
    return JSONResponse({"object": "list", "data": [budget_json(b) for b in budgets]})


@router.put("/v1/admin/budgets/{scope}/{subject}")
async def set_budget(request: Request, scope: str, subject: str) -> Response:
    services = _admin(request)
    body = await read_body(request, BudgetSet)
    if _scope(scope) == "key" and await services.accounting.keys.keys.get(subject) is None:
        raise _key_not_found(subject)
    await services.accounting.budgets.set(scope, subject, nanos(body.max_budget), body.period)
    await _audit(
        request,
        "budget.set",
        f"{scope}:{subject}",
        {"max_budget": body.max_budget, "period": body.period},
    )
    await services.accounting.settle_now()  # spare slices must not outlive a lower limit
    return JSONResponse(budget_json(await services.accounting.budgets.get(scope, subject)))


@router.get("/v1/admin/budgets/{scope}/{subject}")
async def retrieve_budget(request: Request, scope: str, subject: str) -> Response:
    services = _admin(request)
    await services.accounting.settle_now()
    budget = await services.accounting.budgets.get(_scope(scope), subject)
    if budget is None:
        raise NotFoundError(f"No budget for {scope} `{subject}`.")
    return JSONResponse(budget_json(budget))


@router.delete("/v1/admin/budgets/{scope}/{subject}")
async def delete_budget(request: Request, scope: str, subject: str) -> Response:
    services = _admin(request)
    if not await services.accounting.budgets.delete(_scope(scope), subject):
        raise NotFoundError(f"No budget for {scope} `{subject}`.")
    await _audit(request, "budget.delete", f"{scope}:{subject}", {})
    return JSONResponse({"object": "portway.budget.deleted", "scope": scope, "subject": subject})


@router.post("/v1/admin/budgets/{scope}/{subject}/reset")
async def reset_budget(request: Request, scope: str, subject: str) -> Response:
    services = _admin(request)
    if not await services.accounting.budgets.reset(_scope(scope), subject):
        raise NotFoundError(f"No budget for {scope} `{subject}`.")
    await _audit(request, "budget.reset", f"{scope}:{subject}", {})
    return JSONResponse(budget_json(await services.accounting.budgets.get(scope, subject)))


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
    return await _usage(request, _admin(request), None)


@router.get("/v1/usage")
async def own_usage(request: Request) -> Response:
    """Admins see everything; a virtual key only its own rows."""
    principal = principal_of(request)
    forced = None if principal.is_admin else principal.key_id
    return await _usage(request, services_of(request), forced)


@router.get("/v1/admin/queues")
async def queues(request: Request) -> Response:
    services = _admin(request)
    return JSONResponse(
        {
            "object": "portway.queues",
            "deployments": services.accounting.gate.stats(),
            "ledger_queued": services.accounting.ledger.queued,
        }
    )
