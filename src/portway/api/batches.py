"""`/v1/batches`: create, retrieve, list, cancel (HTTP only; see ``batches.service``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import page_request
from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.protocol.batches import CreateBatchRequest

router = APIRouter()


@router.post("/v1/batches")
async def create_batch(request: Request) -> Response:
    body = await read_body(request, CreateBatchRequest)
    services = services_of(request)
    created = await services.batches.service.create(principal_of(request), body)
    await services.privacy.track(principal_of(request), "batch", created["id"])
    return JSONResponse(created)


@router.get("/v1/batches")
async def list_batches(request: Request) -> Response:
    page = page_request(request, default_limit=20, max_limit=100, before=False)
    batches = services_of(request).batches.service
    return JSONResponse(await batches.list(principal_of(request).tenant, page))


@router.get("/v1/batches/{batch_id}")
async def retrieve_batch(request: Request, batch_id: str) -> Response:
    batches = services_of(request).batches.service
    return JSONResponse(await batches.get(principal_of(request).tenant, batch_id))


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(request: Request, batch_id: str) -> Response:
    batches = services_of(request).batches.service
    return JSONResponse(await batches.cancel(principal_of(request).tenant, batch_id))
