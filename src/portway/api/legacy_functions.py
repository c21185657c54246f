"""OpenAI's deprecated ``functions`` / ``function_call`` in chat requests, served as tools.

The request side: ``functions`` become ``tools`` (each ``{"type": "function", "function":
<definition>}``) and ``function_call`` becomes ``tool_choice`` (``"none"``/``"auto"`` as
they are, ``{"name": n}`` as ``{"type": "function", "function": {"name": n}}``), with
``parallel_tool_calls: false``, since a legacy answer holds one call. History in the
legacy form is mapped too: an assistant message's ``function_call`` becomes a
``tool_calls`` entry with a made-up id, and a ``role: function`` message becomes the
``role: tool`` answer to the latest such call (a user message when there is none).
Sending both ``functions`` and ``tools`` (or ``function_call`` and ``tool_choice``), or
``function_call`` without ``functions``, is a 400 naming the parameter.

The answer side, for requests that sent ``functions``: the first tool call of each choice
is returned as ``message.function_call`` (streamed: ``delta.function_call``) and the
``tool_calls`` finish reason as ``function_call``, as OpenAI answers them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from portway.errors import InvalidRequestError
from portway.protocol.chat import (
    ChatCompletionChunkDict,
    ChatCompletionDict,
    ChatCompletionRequest,
)

LEGACY_FIELDS = ("functions", "function_call")


def uses_functions(request: ChatCompletionRequest) -> bool:
    """Whether the client asked in the deprecated form (its answer is given in it too)."""
    return request.functions is not None or request.function_call is not None


def _has_legacy_history(request: ChatCompletionRequest) -> bool:
    # A plain loop on ``role``: this runs for every chat request (about 1 µs).
    for message in request.messages:
        role = message.role
        if role == "function" or (role == "assistant" and message.function_call is not None):  # type: ignore[union-attr]
            return True
    return False


def needs_mapping(request: ChatCompletionRequest) -> bool:
    return uses_functions(request) or _has_legacy_history(request)


def _check(request: ChatCompletionRequest) -> None:
    if request.functions is not None and request.tools is not None:
        raise InvalidRequestError(
            "Send either `functions` (deprecated) or `tools`, not both.", param="functions"
        )
    if request.function_call is not None and request.tool_choice is not None:
        raise InvalidRequestError(
            "Send either `function_call` (deprecated) or `tool_choice`, not both.",
            param="function_call",
        )
    if request.function_call is not None and request.functions is None:
        raise InvalidRequestError(
            "`function_call` is only allowed when `functions` are specified.",
            param="function_call",
        )


def _tool_choice(function_call: Any) -> Any:
    if isinstance(function_call, dict):
        return {"type": "function", "function": {"name": function_call["name"]}}
    return function_call


def _messages(messages: list[Any]) -> list[Any]:
    """Legacy function turns as tool turns; ids pair each result with the latest call."""
    mapped: list[Any] = []
    latest: str | None = None
    for number, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant" and message.get("function_call") and not message.get("tool_calls"):
            latest = f"call_fn{number}"
            call = message["function_call"]
            rest = {key: value for key, value in message.items() if key != "function_call"}
            mapped.append(
                {**rest, "tool_calls": [{"id": latest, "type": "function", "function": call}]}
            )
        elif role == "function" and latest is not None:
            mapped.append(
                {"role": "tool", "tool_call_id": latest, "content": message.get("content") or ""}
            )
            latest = None
        elif role == "function":
            text = f"Result of function {message.get('name')}: {message.get('content') or ''}"
            mapped.append({"role": "user", "content": text})
        else:
            mapped.append(message)
    return mapped


def to_tools(request: ChatCompletionRequest) -> ChatCompletionRequest:
    """The request with its legacy function fields and turns in the tools form."""
    _check(request)
    body = {key: value for key, value in request.wire_body().items() if key not in LEGACY_FIELDS}
    body["messages"] = _messages(body["messages"])
    wire = request.wire_body()
    if wire.get("functions") is not None:
        body["tools"] = [{"type": "function", "function": f} for f in wire["functions"]]
        body["parallel_tool_calls"] = False
    if wire.get("function_call") is not None:
        body["tool_choice"] = _tool_choice(wire["function_call"])
    return ChatCompletionRequest.from_wire(body)


def _finish(reason: Any) -> Any:
    return "function_call" if reason == "tool_calls" else reason


def as_function_call(completion: ChatCompletionDict) -> ChatCompletionDict:
    """A tools answer in the legacy form: ``message.function_call`` (the first call)."""
    for choice in completion.get("choices") or ():
        message: Any = choice.get("message") or {}
        calls = message.pop("tool_calls", None)
        if calls:
            function = calls[0]["function"]
            message["function_call"] = {
                "name": function["name"],
                "arguments": function["arguments"],
            }
        choice["finish_reason"] = _finish(choice.get("finish_reason"))
    return completion


async def function_call_chunks(
    chunks: AsyncIterator[ChatCompletionChunkDict],
) -> AsyncIterator[ChatCompletionChunkDict]:
    """Tool-call deltas as ``delta.function_call`` (the first call of each choice)."""
    try:
        async for chunk in chunks:
            for choice in chunk.get("choices") or ():
                delta: Any = choice.get("delta") or {}
                calls = delta.pop("tool_calls", None)
                first = [call for call in calls or () if int(call.get("index") or 0) == 0]
                if first:
                    function = first[0].get("function") or {}
                    delta["function_call"] = {
                        key: function[key] for key in ("name", "arguments") if key in function
                    }
                choice["finish_reason"] = _finish(choice.get("finish_reason"))
            yield chunk
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
