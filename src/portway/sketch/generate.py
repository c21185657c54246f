"""The sketcher's model calls, each through Portway's one door (``ModelClient``).

Every call is a chat completion with ``response_format: json_schema``, made under the
sketch creator's principal (its keys, limits, budgets, allowed models and guardrails)
and recorded in the ledger under ``endpoint`` ``sketch.<step>``. A graph is validated
after each call; an invalid one gets exactly one repair call that names its problems,
and what is still wrong after it is tidied away and reported, never silently kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from portway.config import SketchConfig
from portway.pipeline.client import ModelClient
from portway.protocol.chat import ChatCompletionRequest
from portway.security.principal import Principal
from portway.sketch import prompts
from portway.sketch.design import Narrative, narrative_schema, parse_narrative
from portway.sketch.diff import stabilize
from portway.sketch.graph import Graph, graph_schema, parse_graph
from portway.sketch.validate import Problem, problems, tidy

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Draft:
    """A graph as it came out of generation: valid, or tidied with its problems listed."""

    graph: Graph
    problems: list[Problem] = field(default_factory=list)
    repaired: bool = False
    answer: str = ""


@dataclass(frozen=True, slots=True)
class Call:
    """Who a sketch's calls are for and with which model."""

    principal: Principal
    model: str
    request_id: str
    max_nodes: int


def _questions_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "questions": {
                "type": "array",
                "items": {"type": "string", "maxLength": 160},
                "maxItems": 3,
            }
        },
        "required": ["questions"],
        "additionalProperties": False,
    }


def _revise_schema(max_nodes: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "maxLength": 600},
            "graph": graph_schema(max_nodes, 2 * max_nodes),
        },
        "required": ["answer", "graph"],
        "additionalProperties": False,
    }


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


class SketchModel:
    def __init__(self, models: ModelClient, config: SketchConfig) -> None:
        self._models = models
        self._config = config

    async def _ask(
        self,
        call: Call,
        messages: list[dict[str, str]],
        *,
        name: str,
        schema: dict[str, Any],
        max_tokens: int,
        step: str,
    ) -> tuple[Any, str]:
        """The model's JSON answer (None when it is not JSON) and its raw text."""
        request = ChatCompletionRequest.model_validate(
            {
                "model": call.model,
                "messages": messages,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": name, "strict": self._config.strict, "schema": schema},
                },
                "max_tokens": max_tokens,
                "temperature": self._config.temperature,
                "seed": self._config.seed,
            }
        )
        completion = await self._models.complete(
            request,
            principal=call.principal,
            request_id=call.request_id,
            endpoint=f"sketch.{step}",
        )
        text = completion["choices"][0]["message"].get("content") or ""
        return _loads(text), text

    async def clarify(self, call: Call, description: str) -> list[str]:
        data, _ = await self._ask(
            call,
            [
                {"role": "system", "content": prompts.CLARIFY_SYSTEM},
                {"role": "user", "content": description},
            ],
            name="clarifying_questions",
            schema=_questions_schema(),
            max_tokens=400,
            step="clarify",
        )
        raw = data.get("questions") if isinstance(data, dict) else None
        questions = [q.strip() for q in raw or [] if isinstance(q, str) and q.strip()]
        return questions[:3]

    async def draft(
        self, call: Call, description: str, questions: Sequence[str], answers: Sequence[str]
    ) -> Draft:
        messages = [
            {"role": "system", "content": prompts.graph_system(call.max_nodes)},
            {"role": "user", "content": prompts.request_text(description, questions, answers)},
        ]
        schema = graph_schema(call.max_nodes, 2 * call.max_nodes)
        data, text = await self._graph_call(call, messages, schema, step="generate")
        return await self._checked(call, messages, schema, data, text)

    async def revise(self, call: Call, graph: Graph, message: str, node_id: str | None) -> Draft:
        focus = graph.node(node_id) if node_id else None
        messages = [
            {
                "role": "system",
                "content": prompts.graph_system(call.max_nodes) + prompts.REVISE_RULES,
            },
            {"role": "user", "content": prompts.revise_text(graph, message, focus)},
        ]
        data, text = await self._ask(
            call,
            messages,
            name="architecture_revision",
            schema=_revise_schema(call.max_nodes),
            max_tokens=self._config.max_graph_tokens,
            step="revise",
        )
        answer = ""
        if isinstance(data, dict):
            answer = data.get("answer") if isinstance(data.get("answer"), str) else ""
            data = data.get("graph")
        schema = graph_schema(call.max_nodes, 2 * call.max_nodes)
        draft = await self._checked(
            call, messages, schema, data, text, previous=graph, answer=answer.strip()
        )
        return draft

    async def narrative(self, call: Call, description: str, graph: Graph) -> Narrative:
        data, _ = await self._ask(
            call,
            [
                {"role": "system", "content": prompts.DOC_SYSTEM},
                {"role": "user", "content": prompts.doc_text(description, graph)},
            ],
            name="design_narrative",
            schema=narrative_schema(),
            max_tokens=self._config.max_doc_tokens,
            step="design",
        )
        return parse_narrative(data)

    async def _graph_call(
        self, call: Call, messages: list[dict[str, str]], schema: dict[str, Any], *, step: str
    ) -> tuple[Any, str]:
        return await self._ask(
            call,
            messages,
            name="architecture_graph",
            schema=schema,
            max_tokens=self._config.max_graph_tokens,
            step=step,
        )

    async def _checked(
        self,
        call: Call,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        data: Any,
        text: str,
        *,
        previous: Graph | None = None,
        answer: str = "",
    ) -> Draft:
        """Validate; on problems, one repair call; then tidy and report what is left."""
        graph, found = self._read(data, previous)
        if not found:
            return Draft(graph, answer=answer)
        logger.info("sketch graph has %d problems; asking for one repair", len(found))
        repair = [
            *messages,
            {"role": "assistant", "content": text or "{}"},
            {"role": "user", "content": prompts.repair_text(found)},
        ]
        data, _ = await self._graph_call(call, repair, schema, step="repair")
        repaired, left = self._read(data, previous)
        if not repaired.components and graph.components:
            repaired, left = graph, found  # the repair made things worse: keep the first
        if left:
            repaired = tidy(repaired)
        return Draft(repaired, problems=left, repaired=True, answer=answer)

    @staticmethod
    def _read(data: Any, previous: Graph | None) -> tuple[Graph, list[Problem]]:
        parsed = parse_graph(data)
        graph = parsed.graph if previous is None else stabilize(previous, parsed.graph)
        if data is None:
            return graph, [Problem("unreadable", "the answer was not valid JSON")]
        return graph, problems(graph, parsed.issues)
