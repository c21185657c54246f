"""`POST /v1/embeddings`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import principal_of, services_of
from portway.api.responses import JSONResponse
from portway.api.wire import read_body
from portway.errors import ModelNotFoundError
from portway.protocol.embeddings import EmbeddingRequest

router = APIRouter()


@router.post("/v1/embeddings")
async def create_embeddings(request: Request) -> Response:
    services = services_of(request)
    body = await read_body(request, EmbeddingRequest)
    if not principal_of(request).may_use(body.model):
        raise ModelNotFoundError(body.model)
    deployment = services.catalog.group(body.model)[0]
    result = await deployment.provider.embed(body)
    result["model"] = body.model
    return JSONResponse(result)
