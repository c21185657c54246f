"""Wire shapes of `/v1/batches` (OpenAI's ``CreateBatchRequest``, ``Batch``,
``ListBatchesResponse``) and of the lines of batch files (``BatchRequestInput``,
``BatchRequestOutput``)."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import Field

from portway.protocol.chat import WireModel
from portway.protocol.metadata import Metadata

BatchStatus = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
COMPLETION_WINDOWS = {"24h": 24 * 3600}


class OutputExpiresAfter(WireModel):
    anchor: Literal["created_at"]
    seconds: int = Field(ge=3600, le=2_592_000)


class CreateBatchRequest(WireModel):
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: Metadata | None = None
    output_expires_after: OutputExpiresAfter | None = None


class BatchErrorDict(TypedDict):
    code: str
    message: str
    param: str | None
    line: int | None


class BatchErrorsDict(TypedDict):
    object: Literal["list"]
    data: list[BatchErrorDict]


class RequestCountsDict(TypedDict):
    total: int
    completed: int
    failed: int


class BatchUsageDict(TypedDict):
    input_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens: int
    output_tokens_details: dict[str, int]
    total_tokens: int


class BatchDict(TypedDict):
    id: str
    object: Literal["batch"]
    endpoint: str
    model: NotRequired[str]
    errors: NotRequired[BatchErrorsDict]
    input_file_id: str
    completion_window: str
    status: BatchStatus
    output_file_id: NotRequired[str]
    error_file_id: NotRequired[str]
    created_at: int
    in_progress_at: NotRequired[int]
    expires_at: NotRequired[int]
    finalizing_at: NotRequired[int]
    completed_at: NotRequired[int]
    failed_at: NotRequired[int]
    expired_at: NotRequired[int]
    cancelling_at: NotRequired[int]
    cancelled_at: NotRequired[int]
    request_counts: RequestCountsDict
    usage: BatchUsageDict
    metadata: dict[str, str]


class LineResponseDict(TypedDict):
    status_code: int
    request_id: str
    body: dict[str, Any]


class LineErrorDict(TypedDict):
    code: str
    message: str


class BatchOutputLineDict(TypedDict):
    """One line of a batch's output or error file."""

    id: str
    custom_id: str
    response: LineResponseDict | None
    error: LineErrorDict | None
