"""OpenAI chat completions ⇄ Anthropic Messages: pure translation, no I/O.

Contract: ``to_messages_request`` turns a validated ``ChatCompletionRequest`` into a
Messages API body, raising ``InvalidRequestError`` (with ``param``) for what Anthropic
cannot express; ``to_completion`` turns a Messages response into a ``chat.completion``
dict (streams: ``anthropic_stream``). ``response_format`` json_schema / json_object
is emulated with a forced tool (the "answer tool") whose input comes back as the
message content with ``finish_reason: stop``.

Requests: system and developer messages become the top-level ``system``, their text
parts joined by a blank line; tool messages become ``tool_result`` blocks; consecutive
turns of one role are merged into one (so parallel tool results share one user turn).
Anthropic refuses whitespace-only text and stop sequences, so they are dropped; a user
message left with nothing is a 400 naming ``messages[i].content``. Tool-call ids are
mapped into Anthropic's alphabet (``anthropic_ids``). A history that calls tools in a
request without ``tools`` declares them as stubs with ``tool_choice: none``, since
Anthropic reads ``tool_use`` blocks only against declared tools. ``temperature`` and
``top_p`` together are refused by current models (Sonnet 4.5, Haiku 4.5, Opus 4.1):
``temperature`` is sent and ``top_p`` dropped. ``seed``, penalties and ``logit_bias``
have no Anthropic equivalent and are ignored, as OpenAI-compatible servers commonly do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from portway.errors import InvalidRequestError, UpstreamError
from portway.protocol.chat import (
    AssistantMessage,
    ChatCompletionDict,
    ChatCompletionRequest,
    DeveloperMessage,
    FilePart,
    ImagePart,
    NamedToolChoice,
    ResponseFormatJSONObject,
    ResponseFormatJSONSchema,
    SystemMessage,
    TextPart,
    Tool,
    ToolCallDict,
    ToolMessage,
    UsageDict,
    UserMessage,
)
from portway.providers.anthropic_ids import ToolIds

Block = dict[str, Any]

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_EMPTY_OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
_JSON_OBJECT_TOOL = "json_object"
OPENING_USER_TEXT = "(start)"
SYSTEM_SEPARATOR = "\n\n"
_STUB_DESCRIPTION = "Called earlier in this conversation; not available now."

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """A Messages API body, the answer tool's name when ``response_format`` is emulated, and
    the tool-call ids the body had to map."""

    payload: dict[str, Any]
    answer_tool: str | None = None
    tool_ids: ToolIds = field(default_factory=ToolIds)


# Requests ------------------------------------------------------------------


def to_messages_request(
    request: ChatCompletionRequest, model: str, default_max_tokens: int, *, stream: bool
) -> MessagesRequest:
    """The Messages API body for ``request``, sent to the upstream ``model``."""
    _reject_unsupported(request)
    tool_ids = ToolIds()
    system, messages = _translate_messages(request, tool_ids)
    payload: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_output_tokens or default_max_tokens,
        "messages": messages,
    }
    if system:
        payload["system"] = system
    payload.update(_sampling(request))
    stops = [stop for stop in request.stop_sequences if stop.strip()]
    if stops:
        payload["stop_sequences"] = stops
    if request.user:
        payload["metadata"] = {"user_id": request.user}
    if stream:
        payload["stream"] = True
    tools, tool_choice, answer_tool = _tools_and_choice(request, _called_tools(messages))
    if tools:
        payload["tools"] = tools
    if tool_choice:
        payload["tool_choice"] = tool_choice
    return MessagesRequest(payload, answer_tool, tool_ids)


def _sampling(request: ChatCompletionRequest) -> dict[str, float | int]:
    """``temperature`` or ``top_p`` (never both: current models refuse that), and ``top_k``."""
    sampling: dict[str, float | int] = {}
    if request.temperature is not None:
        # OpenAI's range is 0..2, Anthropic's 0..1: the top of both means "most random".
        sampling["temperature"] = min(request.temperature, 1.0)
    elif request.top_p is not None:
        sampling["top_p"] = request.top_p
    top_k = (request.model_extra or {}).get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool) and top_k > 0:
        sampling["top_k"] = top_k
    return sampling


def _reject_unsupported(request: ChatCompletionRequest) -> None:
    if request.n is not None and request.n > 1:
        raise InvalidRequestError(
            "Anthropic models return one choice per request; `n` must be 1.", param="n"
        )
    if request.logprobs or request.top_logprobs:
        raise InvalidRequestError(
            "Anthropic models do not return log probabilities; remove `logprobs`.",
            param="logprobs",
        )


def _texts(content: str | Sequence[Any] | None) -> list[str]:
    """The text parts of ``content`` that Anthropic accepts (whitespace-only ones are not)."""
    if content is None:
        return []
    parts = (
        [content]
        if isinstance(content, str)
        else [p.text for p in content if isinstance(p, TextPart)]
    )
    return [text for text in parts if text.strip()]


def _translate_messages(
    request: ChatCompletionRequest, tool_ids: ToolIds
) -> tuple[str, list[dict[str, Any]]]:
    system_parts: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(request.messages):
        role: Literal["user", "assistant"]
        if isinstance(message, SystemMessage | DeveloperMessage):
            system_parts.extend(_texts(message.content))
            continue
        if isinstance(message, UserMessage):
            role, blocks = "user", _user_blocks(message, index)
        elif isinstance(message, AssistantMessage):
            role, blocks = "assistant", _assistant_blocks(message, index, tool_ids)
        elif isinstance(message, ToolMessage):
            role, blocks = "user", [_tool_result(message, tool_ids)]
        else:
            raise InvalidRequestError(
                "Legacy `function` messages are not supported for Anthropic models; "
                "use `tools` and `tool` messages.",
                param=f"messages[{index}].role",
            )
        if not blocks:
            continue
        # Anthropic wants strictly alternating turns: merge neighbours of one role.
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            # Answers to the previous turn's tool calls must open the user turn.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    _trim_prefill(turns)
    if not turns and not system_parts:
        raise InvalidRequestError(
            "Anthropic models need at least one non-empty message.", param="messages"
        )
    if not turns or turns[0]["role"] != "user":
        # Anthropic requires a user turn first; OpenAI also accepts a conversation that
        # opens with the assistant (a greeting) or holds only a system prompt.
        turns.insert(0, {"role": "user", "content": [_text_block(OPENING_USER_TEXT)]})
    return SYSTEM_SEPARATOR.join(system_parts), turns


def _called_tools(turns: list[dict[str, Any]]) -> list[str]:
    """The names of the tools the history calls, each once, in order of first call."""
    names = (
        block["name"]
        for turn in turns
        if turn["role"] == "assistant"
        for block in turn["content"]
        if block["type"] == "tool_use"
    )
    return list(dict.fromkeys(names))


def _trim_prefill(turns: list[dict[str, Any]]) -> None:
    """A final assistant turn is a prefill, which Anthropic rejects with trailing whitespace."""
    if not turns or turns[-1]["role"] != "assistant":
        return
    blocks = turns[-1]["content"]
    if blocks[-1]["type"] == "text":
        blocks[-1]["text"] = blocks[-1]["text"].rstrip()
        if not blocks[-1]["text"]:
            blocks.pop()
    if not blocks:
        turns.pop()


def _text_block(text: str) -> Block:
    return {"type": "text", "text": text}


def _user_blocks(message: UserMessage, index: int) -> list[Block]:
    blocks = _user_content(message, index)
    if not blocks:
        # Dropping the turn would silently change the conversation (a trailing assistant
        # turn becomes a prefill to continue), so the client decides.
        raise InvalidRequestError(
            "Anthropic models refuse a user message without non-whitespace text or other content.",
            param=f"messages[{index}].content",
        )
    return blocks


def _user_content(message: UserMessage, index: int) -> list[Block]:
    if isinstance(message.content, str):
        return [_text_block(text) for text in _texts(message.content)]
    blocks: list[Block] = []
    for position, part in enumerate(message.content):
        param = f"messages[{index}].content[{position}]"
        if isinstance(part, TextPart):
            if part.text.strip():
                blocks.append(_text_block(part.text))
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part.image_url.url, param))
        elif isinstance(part, FilePart):
            blocks.append(_document_block(part.file, param))
        else:
            raise InvalidRequestError(
                f"Anthropic models do not accept `{part.type}` content parts.", param=param
            )
    return blocks


def _parse_data_url(url: str, param: str) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:<type>;base64,<data>`` URL."""
    header, comma, data = url.removeprefix("data:").partition(",")
    media_type, base64_marker, _ = header.partition(";base64")
    if not comma or not base64_marker or not media_type or not data:
        raise InvalidRequestError(
            "Only base64 data URLs (`data:<type>;base64,<data>`) are supported.", param=param
        )
    return media_type.lower(), data


def _image_block(url: str, param: str) -> Block:
    if url.startswith("data:"):
        media_type, data = _parse_data_url(url, param)
        if media_type not in IMAGE_MEDIA_TYPES:
            supported = ", ".join(sorted(IMAGE_MEDIA_TYPES))
            raise InvalidRequestError(
                f"Unsupported image type {media_type!r} (supported: {supported}).", param=param
            )
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequestError("An image URL must be an http(s) or data URL.", param=param)


def _document_block(file: Mapping[str, Any], param: str) -> Block:
    file_data = file.get("file_data")
    if not isinstance(file_data, str):
        raise InvalidRequestError(
            "Anthropic models accept files only inline as `file_data` (uploaded `file_id`s "
            "are not available to them).",
            param=param,
        )
    media_type, data = _parse_data_url(file_data, param)
    if media_type != "application/pdf":
        raise InvalidRequestError("Only PDF files can be sent to Anthropic models.", param=param)
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def _assistant_blocks(message: AssistantMessage, index: int, tool_ids: ToolIds) -> list[Block]:
    if message.function_call is not None:
        raise InvalidRequestError(
            "Legacy `function_call` is not supported for Anthropic models; use `tool_calls`.",
            param=f"messages[{index}].function_call",
        )
    blocks = [_text_block(text) for text in _texts(message.content)]
    for position, call in enumerate(message.tool_calls or ()):
        param = f"messages[{index}].tool_calls[{position}].function.arguments"
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_ids.to_anthropic(call.id),
                "name": call.function.name,
                "input": _parse_arguments(call.function.arguments, param),
            }
        )
    return blocks


def _parse_arguments(arguments: str, param: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequestError("Tool call arguments must be valid JSON.", param=param) from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError("Tool call arguments must be a JSON object.", param=param)
    return parsed


def _tool_result(message: ToolMessage, tool_ids: ToolIds) -> Block:
    block: Block = {
        "type": "tool_result",
        "tool_use_id": tool_ids.to_anthropic(message.tool_call_id),
    }
    texts = _texts(message.content)
    if len(texts) == 1:
        block["content"] = texts[0]
    elif texts:
        block["content"] = [_text_block(text) for text in texts]
    return block


# Tools, tool_choice and the emulated response_format -----------------------


def _tool(tool: Tool) -> Block:
    function = tool.function
    definition: Block = {
        "name": function.name,
        "input_schema": {**_EMPTY_OBJECT_SCHEMA, **(function.parameters or {})},
    }
    if function.description:
        definition["description"] = function.description
    return definition


def _answer_tool(request: ChatCompletionRequest) -> Block | None:
    """The forced tool that emulates ``response_format``, or None for plain text."""
    response_format = request.response_format
    if isinstance(response_format, ResponseFormatJSONSchema):
        spec = response_format.json_schema
        schema = spec.schema_ or {}
        if schema.get("type", "object") != "object":
            raise InvalidRequestError(
                "For Anthropic models the `json_schema` root must be an object.",
                param="response_format.json_schema.schema",
            )
        return {
            "name": spec.name,
            "description": spec.description
            or "Give the final answer as the input of this tool, matching its schema.",
            "input_schema": {**_EMPTY_OBJECT_SCHEMA, **schema},
        }
    if isinstance(response_format, ResponseFormatJSONObject):
        return {
            "name": _JSON_OBJECT_TOOL,
            "description": "Give the final answer as a JSON object, as the input of this tool.",
            "input_schema": {"type": "object", "additionalProperties": True},
        }
    return None


def _stub(name: str) -> Block:
    return {"name": name, "description": _STUB_DESCRIPTION, "input_schema": {"type": "object"}}


def _tools_and_choice(
    request: ChatCompletionRequest, called: Sequence[str]
) -> tuple[list[Block], Block | None, str | None]:
    """(tools, tool_choice, answer tool name) for the Messages API; ``called`` names the
    tools the history calls."""
    tools = [_tool(tool) for tool in request.tools or ()]
    names = {tool["name"] for tool in tools}
    choice = request.tool_choice
    if not tools and choice not in (None, "none", "auto"):
        raise InvalidRequestError("`tool_choice` needs `tools`.", param="tool_choice")
    anthropic_choice: Block | None = None
    if isinstance(choice, NamedToolChoice):
        if choice.function.name not in names:
            raise InvalidRequestError(
                f"`tool_choice` names `{choice.function.name}`, which is not in `tools`.",
                param="tool_choice",
            )
        anthropic_choice = {"type": "tool", "name": choice.function.name}
    elif choice == "required":
        anthropic_choice = {"type": "any"}
    elif choice == "none" and tools:
        # Tools stay declared: Anthropic needs them to read tool_use blocks in the history.
        anthropic_choice = {"type": "none"}
    elif choice == "auto" and tools:
        anthropic_choice = {"type": "auto"}

    answer = _answer_tool(request)
    # Without client tools, the history's calls are declared as stubs the model must not call.
    stubs = [] if tools else [_stub(n) for n in called if answer is None or n != answer["name"]]
    forced_user_tool = anthropic_choice is not None and anthropic_choice["type"] in ("any", "tool")
    if answer is not None and not forced_user_tool:
        if answer["name"] in names:
            raise InvalidRequestError(
                f"The response format name `{answer['name']}` clashes with a tool name.",
                param="response_format",
            )
        if anthropic_choice is None or anthropic_choice["type"] == "auto":
            # The model may still call a real tool, or must answer through the answer tool.
            anthropic_choice = {"type": "any"} if tools else _forced(answer["name"])
        else:
            anthropic_choice = _forced(answer["name"])
        return [*tools, *stubs, answer], _with_parallel(anthropic_choice, request), answer["name"]
    if stubs:
        return stubs, {"type": "none"}, None
    return tools, _with_parallel(anthropic_choice, request) if tools else None, None


def _forced(name: str) -> Block:
    return {"type": "tool", "name": name, "disable_parallel_tool_use": True}


def _with_parallel(choice: Block | None, request: ChatCompletionRequest) -> Block | None:
    if request.parallel_tool_calls is not False:
        return choice
    choice = choice or {"type": "auto"}
    if choice["type"] == "none":
        return choice
    return {**choice, "disable_parallel_tool_use": True}


# Responses -----------------------------------------------------------------


def to_usage(usage: Mapping[str, Any] | None) -> UsageDict:
    """OpenAI usage from Anthropic's: prompt tokens include cache reads and writes."""
    usage = usage or {}
    cached = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cached + written
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def finish_reason(stop_reason: str | None, *, called_tools: bool) -> str:
    reason = _FINISH_REASONS.get(stop_reason or "end_turn", "stop")
    # A call of the answer tool is the emulated structured answer, not a tool call.
    return "stop" if reason == "tool_calls" and not called_tools else reason


def _arguments(block: Mapping[str, Any]) -> str:
    return orjson.dumps(block.get("input") or {}).decode()


def to_completion(message: Any, sent: MessagesRequest, model: str) -> ChatCompletionDict:
    """The ``chat.completion`` for a Messages API response to the request ``sent``."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamError("The upstream answered without a `content` list.")
    texts: list[str] = []
    calls: list[ToolCallDict] = []
    answer: str | None = None
    for block in message["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use" and block.get("name") == sent.answer_tool:
            answer = _arguments(block)
        elif kind == "tool_use":
            calls.append(
                {
                    "id": sent.tool_ids.to_client(str(block.get("id"))),
                    "type": "function",
                    "function": {"name": str(block.get("name")), "arguments": _arguments(block)},
                }
            )
        # thinking and server-tool blocks have no chat-completions equivalent.
    content = answer if answer is not None else ("".join(texts) if texts or not calls else None)
    response_message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    reason = finish_reason(message.get("stop_reason"), called_tools=bool(calls))
    if calls:
        response_message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{message.get('id') or ''}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(message.get("model") or model),
        "choices": [
            {
                "index": 0,
                "message": response_message,  # type: ignore[typeddict-item]
                "logprobs": None,
                "finish_reason": reason,
            }
        ],
        "usage": to_usage(message.get("usage")),
    }
