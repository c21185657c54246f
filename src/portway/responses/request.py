"""A response's next model call as a chat-completions request."""

from __future__ import annotations

from typing import Any

from portway.assistants.tools import chat_tool_choice, chat_tools
from portway.protocol.chat import ChatCompletionRequest
from portway.protocol.responses import (
    CreateResponseRequest,
    FunctionTool,
    TextFormatJSONObject,
    TextFormatJSONSchema,
    ToolChoiceFunction,
)


def _assistant_tools(request: CreateResponseRequest, builtins: bool) -> list[dict[str, Any]]:
    """The request's tools in the Assistants shape ``chat_tools`` translates."""
    tools: list[dict[str, Any]] = []
    for tool in request.tools or ():
        if isinstance(tool, FunctionTool):
            function = tool.model_dump(exclude={"type"}, exclude_none=True)
            tools.append({"type": "function", "function": function})
        elif builtins:
            tools.append({"type": tool.type})
    return tools


def response_format(request: CreateResponseRequest) -> dict[str, Any] | None:
    fmt = request.text.format if request.text is not None else None
    if isinstance(fmt, TextFormatJSONObject):
        return {"type": "json_object"}
    if isinstance(fmt, TextFormatJSONSchema):
        schema = fmt.model_dump(by_alias=True, exclude={"type"}, exclude_none=True)
        return {"type": "json_schema", "json_schema": schema}
    return None


def builtin_names(request: CreateResponseRequest) -> set[str]:
    """Built-in tools the request enables (they reach the model as functions)."""
    return {tool.type for tool in request.tools or () if not isinstance(tool, FunctionTool)}


def chat_request(
    request: CreateResponseRequest,
    messages: list[dict[str, Any]],
    *,
    max_output_tokens: int | None,
    builtins: bool,
    tool_called: bool,
    stream: bool = True,
) -> ChatCompletionRequest:
    """``builtins``: built-in tools are still offered (``max_tool_calls`` not reached);
    ``tool_called``: a tool ran already, so a forced ``tool_choice`` becomes ``auto``;
    ``stream``: the call is streamed (with usage) rather than answered whole."""
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    tools = chat_tools(_assistant_tools(request, builtins))
    if tools:
        body["tools"] = tools
        choice = request.tool_choice
        wire_choice: Any = choice
        if isinstance(choice, ToolChoiceFunction):
            wire_choice = chat_tool_choice({"type": "function", "function": {"name": choice.name}})
        elif choice is not None and not isinstance(choice, str):
            wire_choice = chat_tool_choice({"type": choice.type})  # a built-in tool, by name
        if tool_called and wire_choice not in (None, "none", "auto"):
            wire_choice = "auto"
        offered = {tool["function"]["name"] for tool in tools}
        if isinstance(wire_choice, dict) and wire_choice["function"]["name"] not in offered:
            wire_choice = "auto"
        if wire_choice is not None:
            body["tool_choice"] = wire_choice
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    reasoning = request.reasoning.effort if request.reasoning is not None else None
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_completion_tokens": max_output_tokens,
        "response_format": response_format(request),
        "user": request.safety_identifier or request.user,
        "reasoning_effort": reasoning,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return ChatCompletionRequest.model_validate(body)
