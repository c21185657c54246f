"""The ``file_search`` built-in tool: searches the run's vector stores for the model.

``output`` lists the excerpts numbered ``[1]``, ``[2]``, ... (best first) so the model can
cite them; ``citations`` carries one entry per number, in the same order, for the run
engine's ``file_citation`` annotations; ``step_details`` is the body of OpenAI's
``file_search`` run-step tool call (``ranking_options`` and ``results``).
Problems the model can act on (no query, nothing to search) come back as ``output``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from portway.assistants.builtin import Citation, ToolInvocation, ToolOutcome
from portway.retrieval.search import SearchHit
from portway.vector_stores.serving import VectorStoreService

RANKER = "default_2024_08_21"
QUOTE_CHARS = 200


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_CHARS else flat[: QUOTE_CHARS - 1].rstrip() + "…"


class FileSearchTool:
    type: ClassVar[str] = "file_search"

    def __init__(
        self,
        vector_stores: VectorStoreService,
        max_num_results: int = 10,
        score_threshold: float = 0.0,
    ) -> None:
        self._vector_stores = vector_stores
        self._max_num_results = max_num_results
        self._score_threshold = score_threshold

    async def invoke(self, invocation: ToolInvocation) -> ToolOutcome:
        query = invocation.arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return self._outcome("file_search needs a non-empty string argument 'query'.", [])
        if not invocation.vector_store_ids:
            return self._outcome("No files are attached to search.", [])
        hits = await self._vector_stores.search_stores(
            invocation.tenant,
            invocation.vector_store_ids,
            query,
            self._max_num_results,
            self._score_threshold,
            invocation.principal,
        )
        if not hits:
            return self._outcome(f"No results found for {query!r} in the attached files.", [])
        sections = [
            f"[{number}] {hit.chunk.filename} (score {hit.score:.2f})\n{hit.chunk.text}"
            for number, hit in enumerate(hits, start=1)
        ]
        output = (
            f"File search results for {query!r}. Cite a source by its number, e.g. [1].\n\n"
            + "\n\n".join(sections)
        )
        citations = tuple(Citation(hit.chunk.file_id, _quote(hit.chunk.text)) for hit in hits)
        return self._outcome(output, hits, citations)

    def _outcome(
        self, output: str, hits: list[SearchHit], citations: tuple[Citation, ...] = ()
    ) -> ToolOutcome:
        results: list[dict[str, Any]] = [
            {
                "file_id": hit.chunk.file_id,
                "file_name": hit.chunk.filename,
                "score": round(hit.score, 6),
                "content": [{"type": "text", "text": hit.chunk.text}],
            }
            for hit in hits
        ]
        step_details = {
            "ranking_options": {"ranker": RANKER, "score_threshold": self._score_threshold},
            "results": results,
        }
        return ToolOutcome(output=output, step_details=step_details, citations=citations)
