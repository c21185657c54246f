"""`/v1/files`: multipart upload, list, retrieve, content, delete (HTTP only)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import FileResponse, Response

from portway.api.cursor import page_request
from portway.api.deps import principal_of, services_of
from portway.api.render import JSONResponse
from portway.errors import InternalServerError, InvalidRequestError, UnsupportedMediaTypeError
from portway.protocol.files import UPLOAD_PURPOSES
from portway.retrieval.files import file_object

logger = logging.getLogger(__name__)

router = APIRouter()

MIN_EXPIRY_SECONDS = 3600
MAX_EXPIRY_SECONDS = 2_592_000
# Form fields besides the file part (purpose, expires_after[...]) are tiny.
MAX_FORM_FIELDS = 8
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def upload_body_limit(max_file_bytes: int) -> int:
    """The request-body limit of uploads: the file limit plus room for the form framing."""
    return max_file_bytes + MULTIPART_OVERHEAD_BYTES


def _purpose(form: FormData) -> str:
    purpose = form.get("purpose")
    if not isinstance(purpose, str) or not purpose:
        raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose")
    if purpose not in UPLOAD_PURPOSES:
        allowed = ", ".join(sorted(UPLOAD_PURPOSES))
        raise InvalidRequestError(
            f"Invalid value for 'purpose': '{purpose}'. Supported values are: {allowed}.",
            param="purpose",
            code="invalid_value",
        )
    return purpose


def _expires_after_seconds(form: FormData) -> int | None:
    anchor = form.get("expires_after[anchor]")
    seconds = form.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequestError(
            "Invalid value for 'expires_after.anchor': expected 'created_at'.",
            param="expires_after.anchor",
        )
    if not isinstance(seconds, str) or not seconds.isdigit():
        raise InvalidRequestError(
            "Invalid value for 'expires_after.seconds': expected an integer.",
            param="expires_after.seconds",
        )
    value = int(seconds)
    if not MIN_EXPIRY_SECONDS <= value <= MAX_EXPIRY_SECONDS:
        raise InvalidRequestError(
            f"Invalid value for 'expires_after.seconds': must be between "
            f"{MIN_EXPIRY_SECONDS} and {MAX_EXPIRY_SECONDS}.",
            param="expires_after.seconds",
        )
    return value


@router.post("/v1/files")
async def upload_file(request: Request) -> Response:
    services = services_of(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaTypeError(
            "Uploads must be sent as multipart/form-data with 'file' and 'purpose' fields."
        )
    form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError("Missing required parameter: 'file'.", param="file")
        purpose = _purpose(form)
        expires = _expires_after_seconds(form)
        record = await services.retrieval.files.upload(
            principal_of(request).tenant, upload.filename, purpose, upload.file, expires
        )
    finally:
        await form.close()
    await services.privacy.track(principal_of(request), "file", record.id)
    return JSONResponse(file_object(record))


@router.get("/v1/files")
async def list_files(request: Request) -> Response:
    services = services_of(request)
    page = page_request(request, default_limit=10_000, max_limit=10_000, before=False)
    purpose = request.query_params.get("purpose") or None
    listing = await services.retrieval.files.list(principal_of(request).tenant, page, purpose)
    return JSONResponse(listing)


@router.get("/v1/files/{file_id}")
async def retrieve_file(request: Request, file_id: str) -> Response:
    record = await services_of(request).retrieval.files.get(principal_of(request).tenant, file_id)
    return JSONResponse(file_object(record))


@router.delete("/v1/files/{file_id}")
async def delete_file(request: Request, file_id: str) -> Response:
    files = services_of(request).retrieval.files
    return JSONResponse(await files.delete(principal_of(request).tenant, file_id))


@router.get("/v1/files/{file_id}/content")
async def file_content(request: Request, file_id: str) -> Response:
    files = services_of(request).retrieval.files
    record, path = await files.content_path(principal_of(request).tenant, file_id)
    if not path.is_file():
        logger.error("content of %s is missing from storage at %s", file_id, path)
        raise InternalServerError("The file's content is missing from storage.")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=record.filename,
        content_disposition_type="attachment",
    )
