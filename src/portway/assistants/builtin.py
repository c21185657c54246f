"""Built-in tools (file_search, code_interpreter) as the run engine sees them, and the
thread vector stores that message attachments go to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from portway.security.principal import Principal


@dataclass(frozen=True, slots=True)
class ToolInvocation:
    tenant: str  # Principal.tenant of the run's creator
    run_id: str
    thread_id: str
    arguments: dict[str, Any]  # file_search: {"query": str}; code_interpreter: {"code": str}
    vector_store_ids: tuple[str, ...] = ()  # assistant + thread tool_resources.file_search
    file_ids: tuple[str, ...] = ()  # tool_resources.code_interpreter.file_ids
    # The run's creator as of now: who the tool's model calls (query embeddings) bill.
    principal: Principal | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    file_id: str
    quote: str


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    output: str  # text handed back to the model
    step_details: dict[str, Any]  # OpenAI run-step tool_call body for this type,
    # e.g. {"ranking_options": ..., "results": [...]}
    # or {"input": code, "outputs": [...]}
    citations: tuple[Citation, ...] = ()  # file_search sources, numbered in `output`
    # as [1], [2], ... in this order
    created_file_ids: tuple[str, ...] = ()  # code_interpreter files to attach / annotate


class BuiltinTool(Protocol):
    type: ClassVar[str]  # "file_search" | "code_interpreter"

    async def invoke(self, invocation: ToolInvocation) -> ToolOutcome: ...


class ThreadFileIndex(Protocol):
    """The thread vector stores that message attachments for file_search go to (OpenAI's
    "thread helper" stores); implemented by ``retrieval.thread_stores``.

    Unknown files and stores of another tenant raise ``NotFoundError``.
    """

    async def create_store(self, tenant: str, thread_id: str, file_ids: Sequence[str]) -> str:
        """A new vector store for the thread, indexing ``file_ids``; its id."""
        ...

    async def add_files(self, tenant: str, store_id: str, file_ids: Sequence[str]) -> None:
        """Index ``file_ids`` in the store too (files it has already are left alone)."""
        ...

    async def drop_store(self, tenant: str, store_id: str) -> None: ...

    async def wait_indexed(self, tenant: str, store_ids: Sequence[str], max_seconds: float) -> bool:
        """Wait until no file of the stores is being indexed; False after ``max_seconds`` s."""
        ...
