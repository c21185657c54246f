"""Executing a claimed sketch: its pending operation (clarify, generate or revise).

Contract: ``execute`` reads what to do from the sketch's ``pending`` operation, so a
sketch handed back after a restart starts that operation again from the top (its model
calls are repeated; nothing half-done was stored). Progress is written as ``stage`` for
clients to show. Every step's write is guarded by the worker's hold on the sketch: a
sketch deleted (or taken over) meanwhile is left alone. A model error (budget, rate
limit, unknown model, upstream failure after the router's retries) ends the operation
with that error; the sketch keeps its last good version.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from portway.assistants.engine import Progress
from portway.assistants.principals import RunPrincipals
from portway.errors import PortwayError
from portway.sketch.design import Exchange, Narrative, design_markdown, parse_narrative
from portway.sketch.diff import diff
from portway.sketch.generate import Call, Draft, SketchModel
from portway.sketch.graph import Graph, parse_graph
from portway.sketch.lifecycle import SketchLifecycle
from portway.store.models.sketches import SketchRow, SketchVersionRow
from portway.store.sketches import SketchStore

logger = logging.getLogger(__name__)

DEFAULT_MAX_NODES = 12


def stored_graph(version: SketchVersionRow) -> Graph:
    return parse_graph(version.graph).graph


def discussion(versions: list[SketchVersionRow]) -> list[Exchange]:
    return [
        Exchange(v.number, v.message, v.answer or "", v.node_id)
        for v in versions
        if v.message and v.answer
    ]


class SketchEngine:
    def __init__(
        self,
        *,
        store: SketchStore,
        lifecycle: SketchLifecycle,
        model: SketchModel,
        principals: RunPrincipals,
        owner: str,
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._model = model
        self._principals = principals
        self._owner = owner

    async def execute(self, job: SketchRow, progress: Progress) -> None:
        pending = job.pending or {"op": "generate"}
        try:
            principal = await self._principals.current(job.principal)
            call = Call(
                principal=principal,
                model=job.model,
                request_id="sketch_req_" + secrets.token_hex(8),
                max_nodes=int(job.options.get("max_nodes") or DEFAULT_MAX_NODES),
            )
            if pending.get("op") == "clarify":
                await self._clarify(job, call)
            elif pending.get("op") == "revise":
                await self._revise(job, call, pending)
            else:
                await self._generate(job, call)
        except PortwayError as error:
            logger.info("sketch %s: %s failed: %s", job.id, pending.get("op"), error.message)
            await self._lifecycle.fail(job.id, error.code or error.type, error.message)

    async def _stage(self, job: SketchRow, stage: str) -> bool:
        """Record progress; False when the sketch is no longer ours (deleted, taken over)."""
        moved = await self._store.transition(
            job.id,
            ("in_progress",),
            {"stage": stage, "updated_at": self._lifecycle.clock()},
            owner=self._owner,
        )
        return moved is not None

    async def _clarify(self, job: SketchRow, call: Call) -> None:
        if not await self._stage(job, "asking clarifying questions"):
            return
        questions = await self._model.clarify(call, job.description)
        if not questions:
            # Nothing to ask: go straight on to the graph.
            await self._generate(job, call)
            return
        await self._store.transition(
            job.id,
            ("in_progress",),
            {
                "status": "awaiting_answers",
                "stage": None,
                "questions": questions,
                "pending": {"op": "generate"},
                "owner": None,
                "lease_until": None,
                "updated_at": self._lifecycle.clock(),
            },
            owner=self._owner,
        )

    async def _generate(self, job: SketchRow, call: Call) -> None:
        if not await self._stage(job, "drafting the graph"):
            return
        draft = await self._model.draft(
            call, job.description, job.questions or [], job.answers or []
        )
        if not draft.graph.components:
            await self._lifecycle.fail(
                job.id,
                "invalid_graph",
                "The model produced no usable architecture graph: "
                + "; ".join(problem.message for problem in draft.problems[:5]),
            )
            return
        if not await self._stage(job, "writing the design document"):
            return
        narrative = await self._model.narrative(call, job.description, draft.graph)
        await self._finish(job, draft, narrative, [])

    async def _revise(self, job: SketchRow, call: Call, pending: dict[str, Any]) -> None:
        current = await self._store.version(job.id, job.version)
        if current is None:
            await self._lifecycle.fail(job.id, "invalid_state", "The sketch has no version yet.")
            return
        if not await self._stage(job, "revising the graph"):
            return
        previous = stored_graph(current)
        message = str(pending.get("message") or "")
        node_id = pending.get("node_id")
        draft = await self._model.revise(call, previous, message, node_id)
        if not draft.graph.components:
            await self._lifecycle.fail(
                job.id, "invalid_graph", "The model's revision had no usable graph."
            )
            return
        changed = diff(previous, draft.graph)
        unchanged = not any(
            changed[part][what] for part in ("nodes", "edges") for what in changed[part]
        )
        if unchanged:
            narrative = parse_narrative(current.narrative)
        else:
            if not await self._stage(job, "updating the design document"):
                return
            narrative = await self._model.narrative(call, job.description, draft.graph)
        history = discussion(await self._store.versions(job.id))
        answer = draft.answer or ("No change was needed." if unchanged else "Updated the graph.")
        exchange = Exchange(job.version + 1, message, answer, node_id)
        await self._finish(job, draft, narrative, [*history, exchange], message, node_id, answer)

    async def _finish(
        self,
        job: SketchRow,
        draft: Draft,
        narrative: Narrative,
        history: list[Exchange],
        message: str | None = None,
        node_id: str | None = None,
        answer: str | None = None,
    ) -> None:
        if not await self._stage(job, "rendering"):
            return
        number = job.version + 1
        design = design_markdown(
            draft.graph,
            narrative,
            description=job.description,
            model=job.model,
            version=number,
            discussion=history,
        )
        now = self._lifecycle.clock()
        version = SketchVersionRow(
            sketch_id=job.id,
            number=number,
            graph=draft.graph.to_json(),
            narrative=narrative.to_json(),
            design=design,
            message=message,
            node_id=node_id,
            answer=answer,
            problems=[problem.to_json() for problem in draft.problems],
            repaired=draft.repaired,
            created_at=now,
        )
        await self._store.complete(
            job.id,
            self._owner,
            version,
            {
                "status": "completed",
                "stage": None,
                "pending": None,
                "error": None,
                "owner": None,
                "lease_until": None,
                "updated_at": now,
            },
        )
