"""``/v1/admin/keys`` (master key only): create (the secret is in this one response), list,
retrieve, update, revoke, rotate. HTTP only: parse → ``KeyServing`` → JSON."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import admin_services, principal_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.errors import InvalidRequestError
from portway.keys.serving import KeyServing, key_not_found
from portway.keys.wire import KeyCreate, KeyUpdate

router = APIRouter()


def _serving(request: Request) -> KeyServing:
    return KeyServing(admin_services(request))


@router.post("/v1/admin/keys")
async def create_key(request: Request) -> Response:
    serving = _serving(request)
    body = await read_body(request, KeyCreate)
    return JSONResponse(await serving.create(principal_of(request), body), status_code=201)


@router.get("/v1/admin/keys")
async def list_keys(request: Request) -> Response:
    serving = _serving(request)
    params = request.query_params
    keys = await serving.list(
        user_id=params.get("user"),
        team_id=params.get("team"),
        include_revoked=params.get("include_revoked", "true").lower() != "false",
    )
    return JSONResponse({"object": "list", "data": keys})


@router.get("/v1/admin/keys/{key_id}")
async def retrieve_key(request: Request, key_id: str) -> Response:
    key = await _serving(request).retrieve(key_id)
    if key is None:
        raise key_not_found(key_id)
    return JSONResponse(key)


@router.patch("/v1/admin/keys/{key_id}")
@router.post("/v1/admin/keys/{key_id}")
async def update_key(request: Request, key_id: str) -> Response:
    serving = _serving(request)
    body = await read_body(request, KeyUpdate)
    key = await serving.update(principal_of(request), key_id, body)
    if key is None:
        raise key_not_found(key_id)
    return JSONResponse(key)


@router.delete("/v1/admin/keys/{key_id}")
@router.post("/v1/admin/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    key = await _serving(request).revoke(principal_of(request), key_id)
    if key is None:
        raise key_not_found(key_id)
    return JSONResponse(key)


@router.post("/v1/admin/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str) -> Response:
    serving = _serving(request)
    key = await serving.rotate(principal_of(request), key_id)
    if key is None:
        if not await serving.exists(key_id):
            raise key_not_found(key_id)
        raise InvalidRequestError("A revoked key cannot be rotated.", code="key_revoked")
    return JSONResponse(key)
