"""`/v1/vector_stores`: stores, their files, file batches and search (HTTP only: parse →
``VectorStoreService`` → JSON)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import page_request, query_choice
from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.vector_stores.serving import VectorStoreService
from portway.vector_stores.wire import (
    CreateFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    SearchRequest,
    UpdateVectorStoreFileRequest,
    UpdateVectorStoreRequest,
)

router = APIRouter()

# Tells the SDK's ``*_and_poll`` helpers how soon to ask again (default 1 s).
POLL_HEADERS = {"openai-poll-after-ms": "250"}
_FILE_STATUSES = frozenset({"in_progress", "completed", "failed", "cancelled"})


def _service(request: Request) -> tuple[VectorStoreService, str]:
    return services_of(request).retrieval.vector_stores, principal_of(request).tenant


@router.post("/v1/vector_stores")
async def create_vector_store(request: Request) -> Response:
    service, tenant = _service(request)
    body = await read_body(request, CreateVectorStoreRequest)
    created = await service.create(tenant, body)
    await services_of(request).privacy.track(principal_of(request), "vector_store", created["id"])
    return JSONResponse(created, headers=POLL_HEADERS)


@router.get("/v1/vector_stores")
async def list_vector_stores(request: Request) -> Response:
    service, tenant = _service(request)
    return JSONResponse(await service.list(tenant, page_request(request)))


@router.get("/v1/vector_stores/{store_id}")
async def retrieve_vector_store(request: Request, store_id: str) -> Response:
    service, tenant = _service(request)
    return JSONResponse(await service.get(tenant, store_id), headers=POLL_HEADERS)


@router.post("/v1/vector_stores/{store_id}")
async def modify_vector_store(request: Request, store_id: str) -> Response:
    service, tenant = _service(request)
    body = await read_body(request, UpdateVectorStoreRequest)
    return JSONResponse(await service.update(tenant, store_id, body))


@router.delete("/v1/vector_stores/{store_id}")
async def delete_vector_store(request: Request, store_id: str) -> Response:
    service, tenant = _service(request)
    return JSONResponse(await service.delete(tenant, store_id))


@router.post("/v1/vector_stores/{store_id}/search")
async def search_vector_store(request: Request, store_id: str) -> Response:
    service, tenant = _service(request)
    body = await read_body(request, SearchRequest)
    return JSONResponse(await service.search(tenant, store_id, body, principal_of(request)))


# Files of a store -----------------------------------------------------------


@router.post("/v1/vector_stores/{store_id}/files")
async def create_vector_store_file(request: Request, store_id: str) -> Response:
    service, tenant = _service(request)
    body = await read_body(request, CreateVectorStoreFileRequest)
    return JSONResponse(await service.add_file(tenant, store_id, body), headers=POLL_HEADERS)


@router.get("/v1/vector_stores/{store_id}/files")
async def list_vector_store_files(request: Request, store_id: str) -> Response:
    service, tenant = _service(request)
    status = query_choice(request, "filter", _FILE_STATUSES)
    listing = await service.list_files(tenant, store_id, page_request(request), status)
    return JSONResponse(listing)


@router.get("/v1/vector_stores/{store_id}/files/{file_id}")
async def retrieve_vector_store_file(request: Request, store_id: str, file_id: str) -> Response:
    service, tenant = _service(request)
    record = await service.get_file(tenant, store_id, file_id)
    return JSONResponse(record, headers=POLL_HEADERS)


@router.post("/v1/vector_stores/{store_id}/files/{file_id}")
async def update_vector_store_file(request: Request, store_id: str, file_id: str) -> Response:
    service, tenant = _service(request)
    body = await read_body(request, UpdateVectorStoreFileRequest)
    return JSONResponse(await service.update_file(tenant, store_id, file_id, body))


@router.delete("/v1/vector_stores/{store_id}/files/{file_id}")
async def delete_vector_store_file(request: Request, store_id: str, file_id: str) -> Response:
    service, tenant = _service(request)
    return JSONResponse(await service.delete_file(tenant, store_id, file_id))


# File batches ---------------------------------------------------------------


@router.post("/v1/vector_stores/{store_id}/file_batches")
async def create_file_batch(request: Request, store_id: str) -> Response:
    service, tenant = _service(request)
    body = await read_body(request, CreateFileBatchRequest)
    return JSONResponse(await service.create_batch(tenant, store_id, body), headers=POLL_HEADERS)


@router.get("/v1/vector_stores/{store_id}/file_batches/{batch_id}")
async def retrieve_file_batch(request: Request, store_id: str, batch_id: str) -> Response:
    service, tenant = _service(request)
    batch = await service.get_batch(tenant, store_id, batch_id)
    return JSONResponse(batch, headers=POLL_HEADERS)


@router.post("/v1/vector_stores/{store_id}/file_batches/{batch_id}/cancel")
async def cancel_file_batch(request: Request, store_id: str, batch_id: str) -> Response:
    service, tenant = _service(request)
    return JSONResponse(await service.cancel_batch(tenant, store_id, batch_id))


@router.get("/v1/vector_stores/{store_id}/file_batches/{batch_id}/files")
async def list_file_batch_files(request: Request, store_id: str, batch_id: str) -> Response:
    service, tenant = _service(request)
    status = query_choice(request, "filter", _FILE_STATUSES)
    listing = await service.list_files(
        tenant, store_id, page_request(request), status, batch_id=batch_id
    )
    return JSONResponse(listing)
