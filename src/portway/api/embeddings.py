"""`POST /v1/embeddings`: HTTP only; the call goes through the pipeline like chat's
(key limits, budget hold, router, ledger)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import call_context, services_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.protocol.embeddings import EmbeddingRequest

router = APIRouter()


@router.post("/v1/embeddings")
async def create_embeddings(request: Request) -> Response:
    services = services_of(request)
    body = await read_body(request, EmbeddingRequest)
    ctx = call_context(request, body)
    result = await services.pipeline.embed(ctx)
    return JSONResponse(result, headers=ctx.response_headers)
