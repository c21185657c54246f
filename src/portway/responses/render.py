"""The Response object and its parts as OpenAI renders them (keys in OpenAI's order)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from portway.protocol.responses import (
    CodeInterpreterTool,
    CreateResponseRequest,
    FileSearchTool,
    FunctionTool,
)

# ``include`` values that keep a built-in call's results in what the client sees.
INCLUDE_FILE_SEARCH = "file_search_call.results"
INCLUDE_CODE_OUTPUTS = "code_interpreter_call.outputs"


def tool_object(tool: FunctionTool | FileSearchTool | CodeInterpreterTool) -> dict[str, Any]:
    if isinstance(tool, FunctionTool):
        return {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            "strict": bool(tool.strict),
        }
    if isinstance(tool, FileSearchTool):
        return {
            "type": "file_search",
            "vector_store_ids": tool.vector_store_ids,
            "filters": tool.filters,
            "max_num_results": tool.max_num_results or 10,
            "ranking_options": tool.ranking_options or {"ranker": "auto", "score_threshold": 0.0},
        }
    return {"type": "code_interpreter", "container": tool.container}


def tool_choice_object(request: CreateResponseRequest) -> Any:
    choice = request.tool_choice
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    return choice.model_dump(exclude_none=True)


def text_object(request: CreateResponseRequest) -> dict[str, Any]:
    text = request.text
    fmt = text.format if text is not None else None
    return {
        "format": fmt.model_dump(by_alias=True, exclude_none=True) if fmt else {"type": "text"},
        "verbosity": (text.verbosity if text is not None else None) or "medium",
    }


def new_response(
    response_id: str,
    created_at: float,
    request: CreateResponseRequest,
    *,
    status: str,
    store: bool,
) -> dict[str, Any]:
    """The Response object before the model answered (``usage`` comes with the answer:
    the spec has no null for it)."""
    reasoning = request.reasoning
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(created_at),
        "status": status,
        "background": bool(request.background),
        "completed_at": None,
        "conversation": {"id": request.conversation_id} if request.conversation_id else None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "model": request.model,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "prompt_cache_key": request.prompt_cache_key,
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": reasoning.summary if reasoning else None,
        },
        "safety_identifier": request.safety_identifier,
        "service_tier": "default",
        "store": store,
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": text_object(request),
        "tool_choice": tool_choice_object(request),
        "tools": [tool_object(tool) for tool in request.tools or ()],
        "top_logprobs": request.top_logprobs or 0,
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "truncation": request.truncation or "disabled",
        "metadata": request.metadata or {},
    }
    if request.user is not None:  # a string when present (the spec has no null here)
        body["user"] = request.user
    return body


def usage_object(
    input_tokens: int, cached_tokens: int, output_tokens: int, reasoning_tokens: int
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def visible_item(item: dict[str, Any], include: Iterable[str]) -> dict[str, Any]:
    """An output item as the client sees it: built-in results only when ``include`` asks."""
    wanted = set(include)
    if item.get("type") == "file_search_call" and INCLUDE_FILE_SEARCH not in wanted:
        return {**item, "results": None}
    if item.get("type") == "code_interpreter_call" and INCLUDE_CODE_OUTPUTS not in wanted:
        return {**item, "outputs": None}
    return item


def visible_response(body: dict[str, Any], include: Sequence[str]) -> dict[str, Any]:
    return {**body, "output": [visible_item(item, include) for item in body["output"]]}


def deleted_object(object_id: str, kind: str) -> dict[str, Any]:
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}
