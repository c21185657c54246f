"""`/v1/sketches`: the architecture sketcher's HTTP surface (see ``sketch.service``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from portway.api.cursor import page_request
from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.api.wire import read_body
from portway.errors import InvalidRequestError
from portway.sketch.service import SketchService
from portway.sketch.wire import AnswerSketchRequest, CreateSketchRequest, ReviseSketchRequest

router = APIRouter()


def _service(request: Request) -> SketchService:
    return services_of(request).sketches.service


def _tenant(request: Request) -> str:
    return principal_of(request).tenant


def _number(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise InvalidRequestError(
            f"Invalid value for '{name}': expected a version number, got '{raw}'.",
            param=name,
            code="invalid_value",
        )
    return int(raw)


@router.post("/v1/sketches")
async def create_sketch(request: Request) -> Response:
    body = await read_body(request, CreateSketchRequest)
    return JSONResponse(await _service(request).create(principal_of(request), body))


@router.get("/v1/sketches")
async def list_sketches(request: Request) -> Response:
    page = page_request(request, default_limit=20, max_limit=100)
    return JSONResponse(await _service(request).list(_tenant(request), page))


@router.get("/v1/sketches/{sketch_id}")
async def retrieve_sketch(request: Request, sketch_id: str) -> Response:
    return JSONResponse(await _service(request).get(_tenant(request), sketch_id))


@router.delete("/v1/sketches/{sketch_id}")
async def delete_sketch(request: Request, sketch_id: str) -> Response:
    return JSONResponse(await _service(request).delete(_tenant(request), sketch_id))


@router.post("/v1/sketches/{sketch_id}/revise")
async def revise_sketch(request: Request, sketch_id: str) -> Response:
    body = await read_body(request, ReviseSketchRequest)
    return JSONResponse(await _service(request).revise(_tenant(request), sketch_id, body))


@router.post("/v1/sketches/{sketch_id}/answers")
async def answer_sketch(request: Request, sketch_id: str) -> Response:
    body = await read_body(request, AnswerSketchRequest)
    return JSONResponse(await _service(request).answer(_tenant(request), sketch_id, body))


@router.get("/v1/sketches/{sketch_id}/versions/{number}")
async def retrieve_version(request: Request, sketch_id: str, number: str) -> Response:
    if not number.isdigit():
        raise InvalidRequestError(
            f"Invalid version number '{number}'.", param="number", code="invalid_value"
        )
    service = _service(request)
    return JSONResponse(await service.version(_tenant(request), sketch_id, int(number)))


@router.get("/v1/sketches/{sketch_id}/diff")
async def diff_versions(request: Request, sketch_id: str) -> Response:
    start, end = _number(request, "from"), _number(request, "to")
    return JSONResponse(await _service(request).diff(_tenant(request), sketch_id, start, end))


@router.get("/v1/sketches/{sketch_id}/export/{name}")
async def export_sketch(request: Request, sketch_id: str, name: str) -> Response:
    exported = await _service(request).export(
        _tenant(request), sketch_id, name, _number(request, "version")
    )
    disposition = "attachment" if request.query_params.get("download") else "inline"
    return Response(
        exported.content,
        media_type=exported.format.media_type,
        headers={
            "content-disposition": f'{disposition}; filename="{exported.format.filename}"',
            "cache-control": "no-store",
        },
    )
