"""Wire models for `/v1/responses` and `/v1/conversations`, fields in the order of OpenAI's spec.

Requests are pydantic models with ``extra="allow"`` (unknown fields are accepted, as
OpenAI accepts them). Items are validated here and kept as JSON afterwards: the engine
stores and renders them in OpenAI's item shapes (``responses.items``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Discriminator, Field, Tag

from portway.protocol.chat import WireModel
from portway.protocol.metadata import Metadata

# Content parts ------------------------------------------------------------------------


class InputTextPart(WireModel):
    type: Literal["input_text"]
    text: str


class InputImagePart(WireModel):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None


class InputFilePart(WireModel):
    type: Literal["input_file"]
    file_id: str | None = None
    filename: str | None = None
    file_data: str | None = None
    file_url: str | None = None


class OutputTextPart(WireModel):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None


class RefusalPart(WireModel):
    type: Literal["refusal"]
    refusal: str


def _tag(field: str, default: str | None = None) -> Any:
    def tag(value: Any) -> str:
        kind = value.get(field) if isinstance(value, dict) else getattr(value, field, None)
        return f"{field}={kind if kind is not None else default}"

    return tag


ContentPart = Annotated[
    Annotated[InputTextPart, Tag("type=input_text")]
    | Annotated[InputImagePart, Tag("type=input_image")]
    | Annotated[InputFilePart, Tag("type=input_file")]
    | Annotated[OutputTextPart, Tag("type=output_text")]
    | Annotated[RefusalPart, Tag("type=refusal")],
    Discriminator(_tag("type")),
]

# Input items --------------------------------------------------------------------------

Role = Literal["user", "assistant", "system", "developer"]


class MessageItem(WireModel):
    role: Role
    content: str | list[ContentPart]
    type: Literal["message"] = "message"
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallItem(WireModel):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallOutputItem(WireModel):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[ContentPart]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FileSearchCallItem(WireModel):
    type: Literal["file_search_call"]
    id: str
    queries: list[str]
    status: str
    results: list[dict[str, Any]] | None = None


class CodeInterpreterCallItem(WireModel):
    type: Literal["code_interpreter_call"]
    id: str
    code: str | None = None
    outputs: list[dict[str, Any]] | None = None
    status: str
    container_id: str | None = None


class ReasoningItem(WireModel):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[dict[str, Any]] = Field(default_factory=list)


class CompactionItem(WireModel):
    """A summary of earlier context, sealed by the server (``/v1/responses/compact``, or
    ``context_management``): it stands for everything before it."""

    type: Literal["compaction"]
    encrypted_content: str = Field(max_length=20_971_520)
    id: str | None = None


class ItemReference(WireModel):
    """An earlier item (of the chained responses or the conversation), by its id."""

    type: Literal["item_reference"]
    id: str = Field(min_length=1)


InputItem = Annotated[
    Annotated[MessageItem, Tag("type=message")]
    | Annotated[FunctionCallItem, Tag("type=function_call")]
    | Annotated[FunctionCallOutputItem, Tag("type=function_call_output")]
    | Annotated[FileSearchCallItem, Tag("type=file_search_call")]
    | Annotated[CodeInterpreterCallItem, Tag("type=code_interpreter_call")]
    | Annotated[ReasoningItem, Tag("type=reasoning")]
    | Annotated[CompactionItem, Tag("type=compaction")]
    | Annotated[ItemReference, Tag("type=item_reference")],
    Discriminator(_tag("type", "message")),
]

# Tools --------------------------------------------------------------------------------


class FunctionTool(WireModel):
    type: Literal["function"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FileSearchTool(WireModel):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1)
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: dict[str, Any] | None = None
    filters: dict[str, Any] | None = None


class CodeInterpreterTool(WireModel):
    type: Literal["code_interpreter"]
    container: str | dict[str, Any]


ToolParam = Annotated[
    Annotated[FunctionTool, Tag("type=function")]
    | Annotated[FileSearchTool, Tag("type=file_search")]
    | Annotated[CodeInterpreterTool, Tag("type=code_interpreter")],
    Discriminator(_tag("type")),
]


class ToolChoiceFunction(WireModel):
    type: Literal["function"]
    name: str


class ToolChoiceBuiltin(WireModel):
    type: Literal["file_search", "code_interpreter"]


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[
        Annotated[ToolChoiceFunction, Tag("type=function")]
        | Annotated[ToolChoiceBuiltin, Tag("type=file_search")]
        | Annotated[ToolChoiceBuiltin, Tag("type=code_interpreter")],
        Discriminator(_tag("type")),
    ]
)

# Text formats -------------------------------------------------------------------------


class TextFormatText(WireModel):
    type: Literal["text"]


class TextFormatJSONObject(WireModel):
    type: Literal["json_object"]


class TextFormatJSONSchema(WireModel):
    type: Literal["json_schema"]
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


TextFormat = Annotated[
    Annotated[TextFormatText, Tag("type=text")]
    | Annotated[TextFormatJSONObject, Tag("type=json_object")]
    | Annotated[TextFormatJSONSchema, Tag("type=json_schema")],
    Discriminator(_tag("type")),
]


class TextConfig(WireModel):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(WireModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ConversationRef(WireModel):
    id: str


class StreamOptions(WireModel):
    include_obfuscation: bool | None = None


class ContextManagement(WireModel):
    type: str
    compact_threshold: int | None = Field(default=None, ge=1000)


# Requests -----------------------------------------------------------------------------

# The spec's ``IncludeEnum``: what ``include`` may ask for (Portway fills the ones its
# tools produce; the others are accepted and have nothing to add).
Includable = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]
INCLUDABLE: frozenset[str] = frozenset(get_args(Includable))


class CreateResponseRequest(WireModel):
    metadata: Metadata | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    user: str | None = None
    safety_identifier: str | None = Field(default=None, max_length=64)
    prompt_cache_key: str | None = None
    previous_response_id: str | None = None
    model: str = Field(min_length=1)
    background: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)
    text: TextConfig | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoice | None = None
    service_tier: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: ReasoningConfig | None = None
    input: str | list[InputItem] | None = None
    include: list[Includable] | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    instructions: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    conversation: str | ConversationRef | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    context_management: list[ContextManagement] | None = None

    @property
    def conversation_id(self) -> str | None:
        if isinstance(self.conversation, ConversationRef):
            return self.conversation.id
        return self.conversation


class InputTokensRequest(WireModel):
    model: str = Field(min_length=1)
    input: str | list[InputItem] | None = None
    previous_response_id: str | None = None
    tools: list[ToolParam] | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    instructions: str | None = None
    conversation: str | ConversationRef | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None


class CompactRequest(WireModel):
    """``POST /v1/responses/compact``: the context to compact, as a create call gives it."""

    model: str = Field(min_length=1)
    input: str | list[InputItem] | None = None
    previous_response_id: str | None = None
    instructions: str | None = None
    prompt_cache_key: str | None = None


class CreateConversationRequest(WireModel):
    metadata: Metadata | None = None
    items: list[InputItem] | None = Field(default=None, max_length=20)


class UpdateConversationRequest(WireModel):
    metadata: Metadata


class CreateConversationItemsRequest(WireModel):
    items: list[InputItem] = Field(min_length=1, max_length=20)
