"""`GET /v1/admin/cache/stats` and `DELETE /v1/admin/cache`: the response cache, for admins."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.errors import PermissionDeniedError

router = APIRouter()


def _require_admin(request: Request) -> None:
    if not principal_of(request).is_admin:
        raise PermissionDeniedError("Managing the cache requires the master key.")


@router.get("/v1/admin/cache/stats")
async def cache_stats(request: Request) -> Response:
    _require_admin(request)
    cache = services_of(request).cache
    if cache is None:
        return JSONResponse({"object": "cache.stats", "enabled": False})
    return JSONResponse(await cache.describe())


@router.delete("/v1/admin/cache")
async def purge_cache(request: Request) -> Response:
    """Remove cached answers, all of them or only a namespace's and/or a model's."""
    _require_admin(request)
    cache = services_of(request).cache
    namespace = request.query_params.get("namespace") or None
    model = request.query_params.get("model") or None
    deleted = 0 if cache is None else await cache.purge(namespace=namespace, model=model)
    await services_of(request).audit.record(
        "cache.purge",
        principal_of(request),
        namespace,
        {"model": model, "deleted": deleted},
    )
    return JSONResponse(
        {"object": "cache.purge", "namespace": namespace, "model": model, "deleted": deleted}
    )
