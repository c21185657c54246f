"""Tools and structured output for local models: prompts, grammars and output parsing.

A local model has no native tool-calling API, so Portway describes the tools in the
system prompt and constrains decoding with a GBNF grammar derived from the JSON
schemas (``local_grammar``: bounded, errors name the parameter). A call is generated as
``{"name": ..., "arguments": {...}}``; with ``tool_choice=auto`` the grammar also admits
plain text that does not start with ``{``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from llama_cpp.llama_grammar import JSON_GBNF

from portway.errors import InvalidRequestError
from portway.protocol.chat import (
    ChatCompletionRequest,
    ResponseFormatJSONObject,
    ResponseFormatJSONSchema,
    Tool,
    ToolCallDict,
)
from portway.providers.local_grammar import GrammarLimits, check_schema, schema_grammar

OutputMode = Literal["text", "json", "tool_required", "tool_auto"]

_ANY_OBJECT: dict[str, Any] = {"type": "object"}
# With tools but tool_choice "none": the history shows earlier calls as JSON text, and a
# small model imitates them; its answer must be text that does not open a call.
_ANSWER_GRAMMAR = "root ::= [^{ \\t\\r\\n\\x00] [^\\x00]*"
_ANSWER_INSTRUCTIONS = "Tools are not available now: answer the user in plain text."


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """How one request's output is shaped: its mode, grammar and extra instructions."""

    mode: OutputMode
    grammar: str | None = None
    instructions: str | None = None
    tools: tuple[Tool, ...] = ()
    # The request parameter the grammar comes from, for errors; one per tool in `tools`.
    param: str | None = None
    tool_params: tuple[str, ...] = ()


def _call_schema(tool: Tool) -> dict[str, Any]:
    parameters = tool.function.parameters or _ANY_OBJECT
    return {
        "type": "object",
        "properties": {"name": {"const": tool.function.name}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _tools_grammar(tools: tuple[Tool, ...], params: tuple[str, ...], limits: GrammarLimits) -> str:
    """One grammar for a call of any of the tools; errors name the tool at fault."""
    for tool, param in zip(tools, params, strict=True):
        check_schema(tool.function.parameters or _ANY_OBJECT, param, limits)
    try:
        return schema_grammar({"anyOf": [_call_schema(tool) for tool in tools]}, "tools", limits)
    except InvalidRequestError:
        for tool, param in zip(tools, params, strict=True):
            schema_grammar(_call_schema(tool), param, limits)
        raise


def rejected_param(plan: OutputPlan, limits: GrammarLimits, rejects: Callable[[str], bool]) -> str:
    """The parameter whose grammar llama.cpp rejects: the tool at fault when one is."""
    for tool, param in zip(plan.tools, plan.tool_params, strict=True):
        if rejects(schema_grammar(_call_schema(tool), param, limits)):
            return param
    return plan.param or "tools"


def _tool_instructions(tools: tuple[Tool, ...], forced: bool) -> str:
    listing = "\n".join(
        json.dumps(
            {
                "name": tool.function.name,
                "description": tool.function.description or "",
                "parameters": tool.function.parameters or _ANY_OBJECT,
            }
        )
        for tool in tools
    )
    call = 'a JSON object {"name": <tool name>, "arguments": <arguments object>}'
    rule = (
        f"You must call one of these tools. Reply with only {call}."
        if forced
        else f"To call a tool, reply with only {call}; otherwise answer in plain text."
    )
    return f"You can use these tools:\n{listing}\n{rule}"


def plan_output(request: ChatCompletionRequest, limits: GrammarLimits) -> OutputPlan:
    """Decide the output mode and build its grammar (once per request, before generation)."""
    indexed = tuple(enumerate(request.tools or ()))
    if indexed and request.tool_choice != "none":
        forced_name = request.forced_tool_name()
        if forced_name is not None:
            indexed = tuple((i, t) for i, t in indexed if t.function.name == forced_name)
            if not indexed:
                raise InvalidRequestError(
                    f"tool_choice names `{forced_name}`, which is not in `tools`.",
                    param="tool_choice",
                )
        tools = tuple(tool for _, tool in indexed)
        params = tuple(f"tools[{i}].function.parameters" for i, _ in indexed)
        forced = forced_name is not None or request.tool_choice == "required"
        call_grammar = _tools_grammar(tools, params, limits)
        instructions = _tool_instructions(tools, forced)
        if forced:
            return OutputPlan("tool_required", call_grammar, instructions, tools, "tools", params)
        # The call grammar's `root` becomes one alternative; text must not open with "{".
        renamed = call_grammar.replace("root ::=", "tool-call ::=", 1)
        grammar = f"root ::= tool-call | free-text\nfree-text ::= [^{{] [^\\x00]*\n{renamed}"
        return OutputPlan("tool_auto", grammar, instructions, tools, "tools", params)
    response_format = request.response_format
    if isinstance(response_format, ResponseFormatJSONSchema):
        schema = response_format.json_schema.schema_ or _ANY_OBJECT
        param = "response_format.json_schema.schema"
        instructions = "Reply with only a JSON value that matches this JSON schema:\n" + json.dumps(
            schema
        )
        return OutputPlan("json", schema_grammar(schema, param, limits), instructions, param=param)
    if isinstance(response_format, ResponseFormatJSONObject):
        return OutputPlan(
            "json", JSON_GBNF, "Reply with only a JSON object.", param="response_format"
        )
    if request.tools:  # and tool_choice "none"
        return OutputPlan("text", _ANSWER_GRAMMAR, _ANSWER_INSTRUCTIONS)
    return OutputPlan("text")


_CALL_MODES = ("tool_required", "tool_auto")
_JSON_SPACE = " \t\n\r"


def opens_tool_call(text: str, plan: OutputPlan) -> bool:
    """Whether generated text is (the start of) a tool call: never an answer to show."""
    return plan.mode in _CALL_MODES and text.lstrip().startswith("{")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in _JSON_SPACE:
        position += 1
    return position


def unfinished_tool_call(text: str) -> ToolCallDict | None:
    """A call cut off before it closed (at the token limit): its name and the arguments
    generated so far, as OpenAI reports a call cut by ``finish_reason: length``; None
    when not even the name was complete. The grammar puts ``name`` before ``arguments``."""
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if not text.startswith("{", position):
        return None
    name: str | None = None
    arguments = ""
    position = _skip_space(text, position + 1)
    try:
        while position < len(text):
            key, position = decoder.raw_decode(text, position)
            position = _skip_space(text, position)
            if not text.startswith(":", position):
                break
            position = _skip_space(text, position + 1)
            if key == "arguments":
                arguments = text[position:].rstrip()
                break
            value, position = decoder.raw_decode(text, position)
            if key == "name" and isinstance(value, str):
                name = value
            position = _skip_space(text, position)
            if not text.startswith(",", position):
                break
            position = _skip_space(text, position + 1)
    except json.JSONDecodeError:
        pass  # the text ends inside this key or value
    if name is None:
        return None
    return {
        "id": "call_" + secrets.token_hex(12),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def parse_tool_call(text: str, plan: OutputPlan) -> ToolCallDict | None:
    """The tool call in generated text, or None when the text is not a complete call."""
    if not opens_tool_call(text, plan):
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or "name" not in payload:
        return None
    return {
        "id": "call_" + secrets.token_hex(12),
        "type": "function",
        "function": {
            "name": str(payload["name"]),
            "arguments": json.dumps(payload.get("arguments", {}), ensure_ascii=False),
        },
    }
