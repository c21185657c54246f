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

router = APIRouter(tags=["request log"])
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def _query(name: str, kind: str, description: str) -> dict[str, object]:
    return {"name": name, "in": "query", "schema": {"type": kind}, "description": description}


# The handlers read the query themselves (OpenAI-style 400s): /docs learns them from here.
LIST_PARAMETERS = [
    _query("since", "number", "Entries created at or after this time (unix seconds)."),
    _query("until", "number", "Entries created before this time (unix seconds)."),
    _query("key_id", "string", "One key's entries (a virtual key always sees only its own)."),
    _query("team", "string", "One team's entries."),
    _query("user", "string", "One user's entries."),
    _query("model", "string", "The model as the client asked for it."),
    _query("status", "string", "`success`, `error`, or an HTTP status code such as 429."),
    _query("min_latency_ms", "number", "Entries at least this slow."),
    _query("endpoint", "string", "An HTTP path, e.g. /v1/chat/completions."),
    _query("after", "string", "The `last_id` of the previous page."),
    _query("limit", "integer", "1 to 200, default 50."),
]


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


@router.get("/v1/admin/requests", openapi_extra={"parameters": LIST_PARAMETERS})
async def list_requests(request: Request) -> Response:
    """The request log, newest first, filtered, one page per call (cursor: ``after``)."""
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
    """One request (by the ``x-request-id`` the client got), with its spans and, when kept,
    its bodies."""
    forced = _own_key(request)
    entry = await services_of(request).observability.request_log.get(request_id, forced)
    if entry is None:
        raise NotFoundError(f"No request with id `{request_id}`.", param="id")
    return JSONResponse(entry)
