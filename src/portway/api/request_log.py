"""`GET /v1/admin/requests` and `GET /v1/admin/requests/{id}`: the request log.

The master key sees every entry; a virtual key only its own (another key's id is a 404,
whatever filters it sends). Shapes: ``REQUEST_LOG_CONTRACT`` (``observability.request_log``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import parse_limit
from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.errors import InvalidRequestError, NotFoundError
from portway.store.request_log import RequestLogFilter

router = APIRouter()
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def _number(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequestError(
            f"Invalid value for '{name}': expected a number, got '{raw}'.",
            param=name,
            code="invalid_value",
        ) from None


def _status(request: Request) -> str | int | None:
    raw = request.query_params.get("status")
    if raw is None or raw == "":
        return None
    if raw in ("success", "error"):
        return raw
    if raw.isdigit() and 100 <= int(raw) <= 599:
        return int(raw)
    raise InvalidRequestError(
        f"Invalid value for 'status': expected 'success', 'error' or an HTTP status code, "
        f"got '{raw}'.",
        param="status",
        code="invalid_value",
    )


def _own_key(request: Request) -> str | None:
    """None for the master key (everything); a virtual key's own id otherwise."""
    principal = principal_of(request)
    if principal.is_admin:
        return None
    return principal.key_id or ""


@router.get("/v1/admin/requests")
async def list_requests(request: Request) -> Response:
    forced = _own_key(request)
    params = request.query_params
    where = RequestLogFilter(
        since=_number(request, "since"),
        until=_number(request, "until"),
        key_id=forced if forced is not None else (params.get("key_id") or None),
        team_id=params.get("team") or None,
        user_id=params.get("user") or None,
        model=params.get("model") or None,
        endpoint=params.get("endpoint") or None,
        status=_status(request),
        min_latency_ms=_number(request, "min_latency_ms"),
    )
    limit = parse_limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    log = services_of(request).observability.request_log
    return JSONResponse(await log.page(where, limit, params.get("after") or None))


@router.get("/v1/admin/requests/{request_id}")
async def retrieve_request(request: Request, request_id: str) -> Response:
    forced = _own_key(request)
    entry = await services_of(request).observability.request_log.get(request_id, forced)
    if entry is None:
        raise NotFoundError(f"No request with id `{request_id}`.", param="id")
    return JSONResponse(entry)
