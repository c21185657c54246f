"""Assistant tools as the model sees them, and citations turned into message annotations.

Built-in tools reach the model as function tools named after their type
(``file_search(query)``, ``code_interpreter(code)``); assistant function tools pass
through unchanged. ``tool_choice`` is mapped the same way. Their arguments are bounded in
the schema (a non-empty query of at most ``FILE_SEARCH_QUERY_MAX_CHARS``, non-empty code
of at most ``CODE_MAX_CHARS``): on a local model the schema is the decoding grammar, so a
forced call cannot run on until the token limit, nor send empty code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

BUILTIN_TYPES = ("file_search", "code_interpreter")
FILE_SEARCH_QUERY_MAX_CHARS = 300
# llama.cpp's JSON-schema converter spells maxLength out as nested optional groups (one
# per character), so a bound must stay small enough for the grammar it builds.
CODE_MAX_CHARS = 1000

_BUILTIN_FUNCTIONS: dict[str, dict[str, Any]] = {
    "file_search": {
        "name": "file_search",
        "description": (
            "Search the files attached to this conversation. Returns numbered excerpts; "
            "cite them in the answer as [1], [2], ..."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What to look for: a short search query.",
                    "minLength": 1,
                    "maxLength": FILE_SEARCH_QUERY_MAX_CHARS,
                }
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    },
    "code_interpreter": {
        "name": "code_interpreter",
        "description": (
            "Run Python code in a sandbox and get its output back (stdout, stderr, errors). "
            "Files the code writes are given to the user."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "The Python program.",
                    "minLength": 1,
                    "maxLength": CODE_MAX_CHARS,
                }
            },
            "required": ["code"],
            "additionalProperties": False,
        },
    },
}


def chat_tools(tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat-completions ``tools`` for an assistant's tool list."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        kind = tool.get("type")
        if kind == "function":
            out.append({"type": "function", "function": tool["function"]})
        elif kind in _BUILTIN_FUNCTIONS:
            out.append({"type": "function", "function": _BUILTIN_FUNCTIONS[kind]})
    return out


def chat_tool_choice(choice: Any) -> Any:
    """``{"type": "file_search"}`` → the named function; strings pass through."""
    if not isinstance(choice, dict):
        return choice
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice["function"]["name"]}}
    return {"type": "function", "function": {"name": choice["type"]}}


def function_names(tools: Iterable[dict[str, Any]]) -> set[str]:
    return {tool["function"]["name"] for tool in tools if tool.get("type") == "function"}


# Citations --------------------------------------------------------------------------

_MARKER = re.compile(r"\[(\d{1,4})\]")


def renumber_markers(text: str, offset: int, count: int) -> str:
    """Shift a tool output's ``[1]..[count]`` markers by ``offset`` so that the citations
    of several file_search calls in one run stay distinct."""
    if offset == 0 or count == 0:
        return text

    def shift(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return f"[{number + offset}]" if 1 <= number <= count else match.group(0)

    return _MARKER.sub(shift, text)


@dataclass(frozen=True, slots=True)
class CitedFile:
    file_id: str
    quote: str


def annotations_for(
    text: str, citations: Sequence[CitedFile], created_files: Sequence[str]
) -> list[dict[str, Any]]:
    """``file_citation`` annotations for ``[n]`` markers that name a citation, and
    ``file_path`` annotations where the text mentions a file the run created."""
    annotations: list[dict[str, Any]] = []
    if citations:
        for match in _MARKER.finditer(text):
            number = int(match.group(1))
            if 1 <= number <= len(citations):
                annotations.append(
                    {
                        "type": "file_citation",
                        "text": match.group(0),
                        "start_index": match.start(),
                        "end_index": match.end(),
                        "file_citation": {"file_id": citations[number - 1].file_id},
                    }
                )
    for file_id in created_files:
        for match in re.finditer(re.escape(file_id), text):
            annotations.append(
                {
                    "type": "file_path",
                    "text": match.group(0),
                    "start_index": match.start(),
                    "end_index": match.end(),
                    "file_path": {"file_id": file_id},
                }
            )
    annotations.sort(key=lambda item: item["start_index"])
    return annotations
