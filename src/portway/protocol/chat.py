"""Wire models for `POST /v1/chat/completions`, fields in the order of OpenAI's spec.

Requests are pydantic models with ``extra="allow"``: unknown fields are accepted (and
forwarded to OpenAI-compatible upstreams), as OpenAI itself accepts them. Responses
are TypedDicts: providers build them as plain JSON-ready dicts, so the hot path
never re-validates what an upstream already produced.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired, Self, TypedDict

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
)

_WIRE = ConfigDict(extra="allow", populate_by_name=True)


class WireModel(BaseModel):
    model_config = _WIRE


# Content parts -------------------------------------------------------------


class TextPart(WireModel):
    type: Literal["text"]
    text: str


class ImageURL(WireModel):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(WireModel):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(WireModel):
    data: str
    format: str


class AudioPart(WireModel):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(WireModel):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(WireModel):
    type: Literal["refusal"]
    refusal: str


def _type_of(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"type={kind}"


# Discriminator tags carry a "key=value" form so error locations can drop them.
UserContentPart = Annotated[
    Annotated[TextPart, Tag("type=text")]
    | Annotated[ImagePart, Tag("type=image_url")]
    | Annotated[AudioPart, Tag("type=input_audio")]
    | Annotated[FilePart, Tag("type=file")],
    Discriminator(_type_of),
]
AssistantContentPart = Annotated[
    Annotated[TextPart, Tag("type=text")] | Annotated[RefusalPart, Tag("type=refusal")],
    Discriminator(_type_of),
]


# Messages ------------------------------------------------------------------


class FunctionCall(WireModel):
    name: str
    arguments: str


class ToolCall(WireModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(WireModel):
    content: str | list[TextPart]
    role: Literal["system"]
    name: str | None = None


class DeveloperMessage(WireModel):
    content: str | list[TextPart]
    role: Literal["developer"]
    name: str | None = None


class UserMessage(WireModel):
    content: str | list[UserContentPart]
    role: Literal["user"]
    name: str | None = None


class AssistantMessage(WireModel):
    content: str | list[AssistantContentPart] | None = None
    refusal: str | None = None
    role: Literal["assistant"]
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None


class ToolMessage(WireModel):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(WireModel):
    role: Literal["function"]
    content: str | None
    name: str


def _role_of(value: Any) -> str:
    role = value.get("role") if isinstance(value, dict) else getattr(value, "role", None)
    return f"role={role}"


ChatMessage = Annotated[
    Annotated[SystemMessage, Tag("role=system")]
    | Annotated[DeveloperMessage, Tag("role=developer")]
    | Annotated[UserMessage, Tag("role=user")]
    | Annotated[AssistantMessage, Tag("role=assistant")]
    | Annotated[ToolMessage, Tag("role=tool")]
    | Annotated[FunctionMessage, Tag("role=function")],
    Discriminator(_role_of),
]


def message_text(content: str | list[Any] | None) -> str:
    """The plain text of a message's content (text parts joined; other parts dropped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


# Tools and formats ---------------------------------------------------------


class FunctionDefinition(WireModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(WireModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(WireModel):
    name: str


class NamedToolChoice(WireModel):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JSONSchemaFormat(WireModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatText(WireModel):
    type: Literal["text"]


class ResponseFormatJSONObject(WireModel):
    type: Literal["json_object"]


class ResponseFormatJSONSchema(WireModel):
    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormat = Annotated[
    Annotated[ResponseFormatText, Tag("type=text")]
    | Annotated[ResponseFormatJSONObject, Tag("type=json_object")]
    | Annotated[ResponseFormatJSONSchema, Tag("type=json_schema")],
    Discriminator(_type_of),
]


class StreamOptions(WireModel):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


# The request ---------------------------------------------------------------


def _at_most_four(value: str | list[str] | None) -> str | list[str] | None:
    if isinstance(value, list) and len(value) > 4:
        raise ValueError("at most 4 stop sequences are allowed")
    return value


def _bias_in_range(value: dict[str, float] | None) -> dict[str, float] | None:
    for token, bias in (value or {}).items():
        if not token.isdigit():
            raise ValueError(f"logit_bias keys must be token ids, got {token!r}")
        if not -100 <= bias <= 100:
            raise ValueError(f"logit_bias values must be between -100 and 100, got {bias}")
    return value


# The sampling parameters chat and text completions share, checked as OpenAI does.
StopSequences = Annotated[str | list[str] | None, AfterValidator(_at_most_four)]
LogitBias = Annotated[dict[str, float] | None, AfterValidator(_bias_in_range)]


class WireRequest(WireModel):
    """A client's request that keeps its own JSON body for pass-through upstreams.

    Frozen: a changed request is a new object (model_copy), so the client's own JSON body
    kept for pass-through can never describe a request that was changed after parsing.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)
    _wire: dict[str, Any] | None = PrivateAttr(default=None)
    _wire_owner: int = PrivateAttr(default=0)
    # True when the output cap was not the client's but Portway's default (see with_output_cap).
    _default_cap: bool = PrivateAttr(default=False)
    # The caller's tenant, set by the router (never from the body): see ``cache_scope``.
    _tenant: str = PrivateAttr(default="")
    if TYPE_CHECKING:  # fields of every subclass, declared there in OpenAI's order
        stop: str | list[str] | None
        stream_options: StreamOptions | None

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> Self:
        """Validate a client's JSON body (strict types) and keep it for pass-through."""
        request = cls.model_validate(body, strict=True)
        request._wire = body
        request._wire_owner = id(request)
        return request

    def bind_tenant(self, tenant: str) -> None:
        """Whose call this is (the router, before any provider sees the request)."""
        self._tenant = tenant

    @property
    def cache_scope(self) -> str:
        """The prefix-cache namespace of this request: its tenant's, split further by the
        client's own ``cache_salt`` (vLLM's field). Prompts in different namespaces never
        share a cache, so no tenant can time or count another's cached prompts."""
        salt = (self.model_extra or {}).get("cache_salt")
        scope = f"{self._tenant}\x00{salt if isinstance(salt, str) else ''}"
        return hashlib.sha256(scope.encode()).hexdigest()[:32]

    def wire_body(self) -> dict[str, Any]:
        """The request as JSON: the client's body itself when this object was parsed from it."""
        if self._wire is not None and self._wire_owner == id(self):
            return self._wire
        return self.model_dump(exclude_unset=True, by_alias=True)

    def _with_default_cap(self, field: str, cap: int) -> Self:
        """A copy whose ``field`` is Portway's default output cap, in its wire body too."""
        capped = self.model_copy(update={field: cap})
        capped._wire = {**self.wire_body(), field: cap}
        capped._wire_owner = id(capped)
        capped._default_cap = True
        return capped

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(WireRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    model: str = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    store: bool | None = None
    stream: bool | None = False
    stop: StopSequences = None
    logit_bias: LogitBias = None
    logprobs: bool | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=128)
    seed: int | None = None
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    user: str | None = None
    # Deprecated by OpenAI in favour of tools/tool_choice; the chat endpoint maps them.
    functions: list[FunctionDefinition] | None = Field(default=None, min_length=1, max_length=128)
    function_call: Literal["none", "auto"] | NamedFunction | None = None

    @property
    def max_output_tokens(self) -> int | None:
        """The output cap the client asked for (`max_completion_tokens` wins over `max_tokens`)."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def output_cap_is_default(self) -> bool:
        """The output cap is Portway's default, not the client's (a provider may lower it)."""
        return self._default_cap

    def with_output_cap(self, cap: int) -> ChatCompletionRequest:
        """This request capped at ``cap`` output tokens when the client set no cap itself.

        The copy's wire body is the client's plus ``max_completion_tokens``, so pass-through
        providers forward the cap the budget hold assumed.
        """
        if self.max_output_tokens is not None:
            return self
        return self._with_default_cap("max_completion_tokens", cap)

    def forced_tool_name(self) -> str | None:
        """The tool the client forces with a named `tool_choice`, if any."""
        if isinstance(self.tool_choice, NamedToolChoice):
            return self.tool_choice.function.name
        return None


# Responses (plain dicts with types) ----------------------------------------


class ToolCallFunctionDict(TypedDict):
    name: str
    arguments: str


class ToolCallDict(TypedDict):
    id: str
    type: Literal["function"]
    function: ToolCallFunctionDict


class ResponseMessageDict(TypedDict):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None
    tool_calls: NotRequired[list[ToolCallDict]]
    function_call: NotRequired[ToolCallFunctionDict]  # deprecated ``functions`` answers
    annotations: NotRequired[list[Any]]


class ChoiceDict(TypedDict):
    index: int
    message: ResponseMessageDict
    logprobs: dict[str, Any] | None
    finish_reason: str


class PromptTokensDetailsDict(TypedDict, total=False):
    cached_tokens: int
    audio_tokens: int


class UsageDict(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: NotRequired[PromptTokensDetailsDict]
    completion_tokens_details: NotRequired[dict[str, int]]


class ChatCompletionDict(TypedDict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChoiceDict]
    usage: NotRequired[UsageDict]
    system_fingerprint: NotRequired[str | None]
    service_tier: NotRequired[str | None]


class ToolCallDeltaDict(TypedDict, total=False):
    index: int
    id: str
    type: Literal["function"]
    function: dict[str, str]


class DeltaDict(TypedDict, total=False):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None
    tool_calls: list[ToolCallDeltaDict]
    function_call: dict[str, str]  # deprecated ``functions`` answers


class ChunkChoiceDict(TypedDict):
    index: int
    delta: DeltaDict
    logprobs: NotRequired[dict[str, Any] | None]
    finish_reason: str | None


class ChatCompletionChunkDict(TypedDict):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoiceDict]
    usage: NotRequired[UsageDict | None]
    system_fingerprint: NotRequired[str | None]
