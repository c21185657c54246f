"""`GET /v1/models` and `GET /v1/models/{model}`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.errors import ModelNotFoundError

router = APIRouter()


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    services = services_of(request)
    principal = principal_of(request)
    data = [card for name, card in services.model_cards.items() if principal.may_use(name)]
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/models/{model:path}")
async def retrieve_model(request: Request, model: str) -> Response:
    services = services_of(request)
    card = services.model_cards.get(model)
    if card is None or not principal_of(request).may_use(model):
        raise ModelNotFoundError(model)
    return JSONResponse(card)
