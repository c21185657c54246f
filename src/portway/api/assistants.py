"""`/v1/assistants`: create, list, retrieve, modify, delete (HTTP only; ``ObjectService`` decides).

Also the query parsing shared by every Assistants API list endpoint (cursor pagination).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import principal_of, services_of
from portway.api.responses import JSONResponse
from portway.api.wire import read_body
from portway.assistants.render import assistant_object, deleted_object, list_object
from portway.errors import InvalidRequestError
from portway.protocol.assistants import CreateAssistantRequest, ModifyAssistantRequest
from portway.store.pagination import PageRequest

router = APIRouter()

MAX_LIMIT = 100


def page_request(request: Request) -> PageRequest:
    """``limit`` (1..100, default 20), ``order`` (asc|desc, default desc), ``after``, ``before``."""
    query = request.query_params
    raw_limit = query.get("limit")
    limit = 20
    if raw_limit is not None:
        if not raw_limit.strip().lstrip("-").isdigit():
            raise InvalidRequestError(
                f"Invalid value for 'limit': expected an integer, got '{raw_limit}'.",
                param="limit",
                code="invalid_value",
            )
        limit = int(raw_limit)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequestError(
                f"Invalid 'limit': integer below minimum value. Expected a value between 1 "
                f"and {MAX_LIMIT}, but got {limit} instead."
                if limit < 1
                else f"Invalid 'limit': integer above maximum value. Expected a value between "
                f"1 and {MAX_LIMIT}, but got {limit} instead.",
                param="limit",
                code="invalid_value",
            )
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError(
            f"Invalid value for 'order': expected 'asc' or 'desc', got '{order}'.",
            param="order",
            code="invalid_value",
        )
    return PageRequest(
        limit=limit,
        order=order,  # type: ignore[arg-type]
        after=query.get("after") or None,
        before=query.get("before") or None,
    )


@router.post("/v1/assistants")
async def create_assistant(request: Request) -> Response:
    body = await read_body(request, CreateAssistantRequest)
    row = await services_of(request).assistants.objects.create_assistant(
        principal_of(request), body
    )
    return JSONResponse(assistant_object(row))


@router.get("/v1/assistants")
async def list_assistants(request: Request) -> Response:
    page = await services_of(request).assistants.objects.list_assistants(
        principal_of(request), page_request(request)
    )
    return JSONResponse(list_object([assistant_object(r) for r in page.items], page.has_more))


@router.get("/v1/assistants/{assistant_id}")
async def retrieve_assistant(request: Request, assistant_id: str) -> Response:
    row = await services_of(request).assistants.objects.get_assistant(
        principal_of(request), assistant_id
    )
    return JSONResponse(assistant_object(row))


@router.post("/v1/assistants/{assistant_id}")
async def modify_assistant(request: Request, assistant_id: str) -> Response:
    body = await read_body(request, ModifyAssistantRequest)
    row = await services_of(request).assistants.objects.modify_assistant(
        principal_of(request), assistant_id, body
    )
    return JSONResponse(assistant_object(row))


@router.delete("/v1/assistants/{assistant_id}")
async def delete_assistant(request: Request, assistant_id: str) -> Response:
    await services_of(request).assistants.objects.delete_assistant(
        principal_of(request), assistant_id
    )
    return JSONResponse(deleted_object(assistant_id, "assistant"))
