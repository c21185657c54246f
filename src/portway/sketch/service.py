"""`/v1/sketches` behind HTTP: create, read, list, delete, revise, answer, versions, diff
and exports, scoped to the caller's tenant (another tenant's sketch is a 404).

Create and revise store the operation and queue the sketch; a background worker of
any Portway process claims and executes it (``SketchEngine``). Exports are computed
from the stored graph on request (deterministic, no model) off the event loop, within
``sketch.render_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portway.assistants.principals import principal_snapshot
from portway.assistants.workers import RunWorkers
from portway.config import SketchConfig
from portway.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    ServiceUnavailableError,
)
from portway.protocol.lists import ListObject, list_object
from portway.security.principal import Principal
from portway.sketch.diff import diff
from portway.sketch.engine import stored_graph
from portway.sketch.exporters import FORMATS, Format, available, export
from portway.sketch.render import sketch_object, version_object
from portway.sketch.wire import AnswerSketchRequest, CreateSketchRequest, ReviseSketchRequest
from portway.store.models.sketches import SketchRow, SketchVersionRow
from portway.store.pagination import PageRequest
from portway.store.sketches import SketchStore

BUSY = ("queued", "in_progress")


def new_sketch_id() -> str:
    return "sketch_" + secrets.token_hex(12)


def sketch_not_found(sketch_id: str) -> NotFoundError:
    return NotFoundError(f"No sketch found with id '{sketch_id}'.", param="sketch_id")


@dataclass(frozen=True, slots=True)
class Exported:
    content: bytes
    format: Format


class SketchService:
    def __init__(
        self,
        *,
        store: SketchStore,
        workers: RunWorkers[SketchRow],
        config: SketchConfig,
        default_model: str | None,
        known_model: Callable[[str], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._workers = workers
        self._config = config
        self._default_model = default_model
        self._known_model = known_model
        self._clock = clock

    async def create(self, principal: Principal, request: CreateSketchRequest) -> dict[str, Any]:
        model = request.model or self._config.default_model or self._default_model
        if model is None:
            raise InvalidRequestError("No model is configured for sketches.", param="model")
        if not self._known_model(model) or not principal.may_use(model):
            raise ModelNotFoundError(model)
        now = self._clock()
        row = SketchRow(
            id=new_sketch_id(),
            tenant=principal.tenant,
            status="queued",
            stage="queued",
            model=model,
            description=request.description.strip(),
            options=request.options.model_dump(),
            pending={"op": "clarify" if request.options.clarify else "generate"},
            version=0,
            created_at=now,
            updated_at=now,
            meta=dict(request.metadata or {}),
            principal=principal_snapshot(principal),
            attempts=0,
        )
        await self._store.create(row)
        self._workers.wake()
        return sketch_object(row, None)

    async def get(self, tenant: str, sketch_id: str) -> dict[str, Any]:
        row = await self._row(tenant, sketch_id)
        return sketch_object(row, await self._current(row))

    async def list(self, tenant: str, page: PageRequest) -> ListObject:
        found = await self._store.list(tenant, page)
        items = [sketch_object(row, await self._current(row)) for row in found.items]
        return list_object(items, found.has_more)

    async def delete(self, tenant: str, sketch_id: str) -> dict[str, Any]:
        if not await self._store.delete(tenant, sketch_id):
            raise sketch_not_found(sketch_id)
        # Its worker, if any, finds it gone at its next lease renewal and stops.
        self._workers.request_cancel(sketch_id)
        return {"id": sketch_id, "object": "sketch.deleted", "deleted": True}

    async def revise(
        self, tenant: str, sketch_id: str, request: ReviseSketchRequest
    ) -> dict[str, Any]:
        row = await self._row(tenant, sketch_id)
        current = await self._current(row)
        if current is None or row.status != "completed":
            raise InvalidRequestError(
                f"The sketch is '{row.status}'; it can be revised once it is completed.",
                param="sketch_id",
                code="invalid_state",
            )
        if request.node_id is not None and stored_graph(current).node(request.node_id) is None:
            raise InvalidRequestError(
                f"The sketch has no node '{request.node_id}'.",
                param="node_id",
                code="invalid_value",
            )
        pending = {"op": "revise", "message": request.message, "node_id": request.node_id}
        return await self._queue(row, ("completed",), {"pending": pending, "stage": "queued"})

    async def answer(
        self, tenant: str, sketch_id: str, request: AnswerSketchRequest
    ) -> dict[str, Any]:
        row = await self._row(tenant, sketch_id)
        if row.status != "awaiting_answers":
            raise InvalidRequestError(
                f"The sketch is '{row.status}'; it has no questions waiting for answers.",
                param="sketch_id",
                code="invalid_state",
            )
        answers = [answer.strip() for answer in request.answers]
        return await self._queue(
            row, ("awaiting_answers",), {"answers": answers, "stage": "queued"}
        )

    async def _queue(
        self, row: SketchRow, expected: tuple[str, ...], changes: dict[str, Any]
    ) -> dict[str, Any]:
        queued = await self._store.transition(
            row.id,
            expected,
            {**changes, "status": "queued", "error": None, "updated_at": self._clock()},
        )
        if queued is None:
            raise InvalidRequestError(
                "The sketch changed meanwhile; retrieve it and try again.",
                param="sketch_id",
                code="invalid_state",
            )
        self._workers.wake()
        return sketch_object(queued, await self._current(queued))

    async def version(self, tenant: str, sketch_id: str, number: int) -> dict[str, Any]:
        await self._row(tenant, sketch_id)
        return version_object(await self._version(sketch_id, number))

    async def diff(
        self, tenant: str, sketch_id: str, start: int | None, end: int | None
    ) -> dict[str, Any]:
        row = await self._row(tenant, sketch_id)
        end = row.version if end is None else end
        start = end - 1 if start is None else start
        before = stored_graph(await self._version(sketch_id, start, param="from"))
        after = stored_graph(await self._version(sketch_id, end, param="to"))
        return {
            "object": "sketch.diff",
            "sketch_id": sketch_id,
            "from": start,
            "to": end,
            **diff(before, after),
        }

    async def export(self, tenant: str, sketch_id: str, name: str, number: int | None) -> Exported:
        chosen = FORMATS.get(name)
        if chosen is None:
            raise InvalidRequestError(
                f"Invalid value for 'format': '{name}'. Supported values are: "
                + ", ".join(f"'{f}'" for f in FORMATS)
                + ".",
                param="format",
                code="invalid_value",
            )
        if not available(name):
            raise InvalidRequestError(
                "PNG export is unavailable on this server: no SVG renderer is installed "
                "(pip install resvg-py). Use format 'svg'.",
                param="format",
                code="format_unavailable",
            )
        row = await self._row(tenant, sketch_id)
        version = await self._version(sketch_id, number if number is not None else row.version)
        graph = stored_graph(version)
        try:
            content = await asyncio.wait_for(
                asyncio.to_thread(export, graph, name, version.design),
                self._config.render_timeout_seconds,
            )
        except TimeoutError:
            raise ServiceUnavailableError(
                f"Rendering the sketch as {name} took longer than "
                f"{self._config.render_timeout_seconds:g}s."
            ) from None
        return Exported(content, chosen)

    async def _row(self, tenant: str, sketch_id: str) -> SketchRow:
        row = await self._store.get(tenant, sketch_id)
        if row is None:
            raise sketch_not_found(sketch_id)
        return row

    async def _current(self, row: SketchRow) -> SketchVersionRow | None:
        return await self._store.version(row.id, row.version) if row.version else None

    async def _version(
        self, sketch_id: str, number: int, param: str = "version"
    ) -> SketchVersionRow:
        found = await self._store.version(sketch_id, number) if number > 0 else None
        if found is None:
            raise NotFoundError(f"The sketch {sketch_id} has no version {number}.", param=param)
        return found
