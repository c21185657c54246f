"""Wire shapes of `/v1/files` (OpenAI's ``OpenAIFile``, ``ListFilesResponse``,
``DeleteFileResponse``). Uploads are multipart forms, parsed in ``api/files.py``."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# Purposes a client may upload with (``CreateFileRequest.purpose``).
UPLOAD_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
# Files Portway itself creates (code_interpreter outputs; batches' output and error files).
ASSISTANTS_OUTPUT = "assistants_output"
BATCH_INPUT = "batch"
BATCH_OUTPUT = "batch_output"


class FileObjectDict(TypedDict):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    expires_at: NotRequired[int]
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    status_details: NotRequired[str]


class FileDeletedDict(TypedDict):
    id: str
    object: Literal["file"]
    deleted: bool
