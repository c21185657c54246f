"""Wire models for the Assistants API v2 (assistants, threads, messages, runs, run steps).

Requests are pydantic models with ``extra="allow"``, fields in the order of OpenAI's
spec (``CreateThreadRequest``, ``CreateRunRequest``, ...). Responses are TypedDicts
(``ThreadObject``, ``RunObject``, ...), built by ``assistants.render``. The assistant
object and its requests live with their routes in ``assistants.wire``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from portway.protocol.chat import (
    FunctionDefinition,
    NamedFunction,
    ResponseFormatJSONObject,
    ResponseFormatJSONSchema,
    ResponseFormatText,
    WireModel,
)
from portway.protocol.metadata import Metadata

# Run lifecycle -------------------------------------------------------------

RunStatus = Literal[
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
]
RUN_ACTIVE: tuple[RunStatus, ...] = ("queued", "in_progress", "requires_action", "cancelling")
RUN_TERMINAL: tuple[RunStatus, ...] = ("cancelled", "failed", "completed", "incomplete", "expired")
RunErrorCode = Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]


def _type_of(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"type={kind}"


# Tools ---------------------------------------------------------------------


class FunctionTool(WireModel):
    type: Literal["function"]
    function: FunctionDefinition


class FileSearchOptions(WireModel):
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: dict[str, Any] | None = None


class FileSearchTool(WireModel):
    type: Literal["file_search"]
    file_search: FileSearchOptions | None = None


class CodeInterpreterTool(WireModel):
    type: Literal["code_interpreter"]


AssistantTool = Annotated[
    Annotated[CodeInterpreterTool, Tag("type=code_interpreter")]
    | Annotated[FileSearchTool, Tag("type=file_search")]
    | Annotated[FunctionTool, Tag("type=function")],
    Discriminator(_type_of),
]


class CodeInterpreterResources(WireModel):
    file_ids: list[str] = Field(default_factory=list, max_length=20)


class FileSearchResources(WireModel):
    vector_store_ids: list[str] | None = Field(default=None, max_length=1)
    vector_stores: list[dict[str, Any]] | None = None

    @field_validator("vector_stores")
    @classmethod
    def _no_inline_vector_stores(cls, value: list[dict[str, Any]] | None) -> None:
        if value:
            raise ValueError(
                "creating vector stores inline is not supported; create them with "
                "POST /v1/vector_stores and pass vector_store_ids"
            )
        return None


class ToolResources(WireModel):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


ResponseFormatOption = (
    Literal["auto"]
    | Annotated[
        Annotated[ResponseFormatText, Tag("type=text")]
        | Annotated[ResponseFormatJSONObject, Tag("type=json_object")]
        | Annotated[ResponseFormatJSONSchema, Tag("type=json_schema")],
        Discriminator(_type_of),
    ]
)


class NamedAssistantToolChoice(WireModel):
    type: Literal["function", "code_interpreter", "file_search"]
    function: NamedFunction | None = None

    @model_validator(mode="after")
    def _function_named(self) -> NamedAssistantToolChoice:
        if self.type == "function" and self.function is None:
            raise ValueError("a tool_choice of type 'function' must name the function")
        return self


AssistantToolChoice = Literal["none", "auto", "required"] | NamedAssistantToolChoice


class TruncationStrategy(WireModel):
    # ``summarize``: a Portway extension (older thread messages replaced by a summary).
    type: Literal["auto", "last_messages", "summarize"]
    last_messages: int | None = Field(default=None, ge=1)


# Assistants ----------------------------------------------------------------


# Messages and threads ------------------------------------------------------


class ImageFile(WireModel):
    file_id: str
    detail: Literal["auto", "low", "high"] | None = None


class ImageFilePart(WireModel):
    type: Literal["image_file"]
    image_file: ImageFile


class ImageURL(WireModel):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImageURLPart(WireModel):
    type: Literal["image_url"]
    image_url: ImageURL


class TextInputPart(WireModel):
    type: Literal["text"]
    text: str


MessageInputPart = Annotated[
    Annotated[ImageFilePart, Tag("type=image_file")]
    | Annotated[ImageURLPart, Tag("type=image_url")]
    | Annotated[TextInputPart, Tag("type=text")],
    Discriminator(_type_of),
]


class FileSearchTypeOnly(WireModel):
    type: Literal["file_search"]


AttachmentTool = Annotated[
    Annotated[CodeInterpreterTool, Tag("type=code_interpreter")]
    | Annotated[FileSearchTypeOnly, Tag("type=file_search")],
    Discriminator(_type_of),
]


class Attachment(WireModel):
    file_id: str
    tools: list[AttachmentTool] = Field(default_factory=list)


class CreateMessageRequest(WireModel):
    role: Literal["user", "assistant"]
    content: str | list[MessageInputPart] = Field(min_length=1)
    attachments: list[Attachment] | None = None
    metadata: Metadata | None = None


class ModifyMessageRequest(WireModel):
    metadata: Metadata | None = None


class CreateThreadRequest(WireModel):
    messages: list[CreateMessageRequest] | None = None
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None


class ModifyThreadRequest(WireModel):
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None


# Runs ----------------------------------------------------------------------


class _RunOptions(WireModel):
    """What creating a run and creating a thread-and-run have in common."""

    assistant_id: str = Field(min_length=1)
    model: str | None = None
    reasoning_effort: str | None = None
    instructions: str | None = None
    tools: list[AssistantTool] | None = Field(default=None, max_length=20)
    metadata: Metadata | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    stream: bool | None = None
    max_prompt_tokens: int | None = Field(default=None, ge=256)
    max_completion_tokens: int | None = Field(default=None, ge=256)
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: AssistantToolChoice | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormatOption | None = None


class CreateRunRequest(_RunOptions):
    additional_instructions: str | None = None
    additional_messages: list[CreateMessageRequest] | None = None


class CreateThreadAndRunRequest(_RunOptions):
    thread: CreateThreadRequest | None = None
    tool_resources: ToolResources | None = None


class ModifyRunRequest(WireModel):
    metadata: Metadata | None = None


class ToolOutput(WireModel):
    tool_call_id: str = Field(min_length=1)
    output: str = ""


class SubmitToolOutputsRunRequest(WireModel):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None


# Responses (plain dicts with types) ----------------------------------------


class ThreadObject(TypedDict):
    id: str
    object: Literal["thread"]
    created_at: int
    tool_resources: dict[str, Any] | None
    metadata: dict[str, str]


class MessageObject(TypedDict):
    id: str
    object: Literal["thread.message"]
    created_at: int
    thread_id: str
    status: Literal["in_progress", "incomplete", "completed"]
    incomplete_details: dict[str, Any] | None
    completed_at: int | None
    incomplete_at: int | None
    role: Literal["user", "assistant"]
    content: list[dict[str, Any]]
    assistant_id: str | None
    run_id: str | None
    attachments: list[dict[str, Any]] | None
    metadata: dict[str, str]


class RunObject(TypedDict):
    id: str
    object: Literal["thread.run"]
    created_at: int
    thread_id: str
    assistant_id: str
    status: RunStatus
    required_action: dict[str, Any] | None
    last_error: dict[str, Any] | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    incomplete_details: dict[str, Any] | None
    model: str
    instructions: str
    tools: list[dict[str, Any]]
    metadata: dict[str, str]
    usage: dict[str, int] | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: dict[str, Any]
    tool_choice: Any
    parallel_tool_calls: bool
    response_format: Any
    reasoning_effort: NotRequired[str | None]


class RunStepObject(TypedDict):
    id: str
    object: Literal["thread.run.step"]
    created_at: int
    assistant_id: str
    thread_id: str
    run_id: str
    type: Literal["message_creation", "tool_calls"]
    status: Literal["in_progress", "cancelled", "failed", "completed", "expired"]
    step_details: dict[str, Any]
    last_error: dict[str, Any] | None
    expired_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    metadata: dict[str, str]
    usage: dict[str, int] | None


class DeletedObject(TypedDict):
    id: str
    object: str
    deleted: bool
