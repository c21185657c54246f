"""Built-in tools (file_search, code_interpreter) as the run engine sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True, slots=True)
class ToolInvocation:
    tenant: str                        # Principal.tenant of the run's creator
    run_id: str
    thread_id: str
    arguments: dict[str, Any]          # file_search: {"query": str}; code_interpreter: {"code": str}
    vector_store_ids: tuple[str, ...] = ()   # assistant + thread tool_resources.file_search
    file_ids: tuple[str, ...] = ()           # tool_resources.code_interpreter.file_ids


@dataclass(frozen=True, slots=True)
class Citation:
    file_id: str
    quote: str


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    output: str                                  # text handed back to the model
    step_details: dict[str, Any]                 # OpenAI run-step tool_call body for this type,
                                                 # e.g. {"ranking_options": ..., "results": [...]}
                                                 # or {"input": code, "outputs": [...]}
    citations: tuple[Citation, ...] = ()         # file_search sources, numbered in `output`
                                                 # as [1], [2], ... in this order
    created_file_ids: tuple[str, ...] = ()       # code_interpreter files to attach / annotate


class BuiltinTool(Protocol):
    type: ClassVar[str]                          # "file_search" | "code_interpreter"

    async def invoke(self, invocation: ToolInvocation) -> ToolOutcome: ...
