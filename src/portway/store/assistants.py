"""Repositories for the Assistants API: objects (assistants, threads, messages) and runs.

Contract: every read that a client triggers is scoped by ``tenant``; a row of another
tenant is indistinguishable from a missing one (``None``). Rows come back detached
and are treated as read-only values: every change goes through a method here.
Changes are single ``UPDATE`` statements guarded by their ``WHERE`` clause (compare and
set), so concurrent workers and requests never interleave a read and a write of the
same run. Queued runs are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
serialises writers, so the same statement is atomic there. A run or step never becomes
``failed`` without a ``last_error``: a change that would do so gets a generic one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portway.protocol.assistants import RUN_ACTIVE
from portway.store.database import Database
from portway.store.jobs import JobKind, JobQueue, update_returning
from portway.store.models.assistants import (
    AssistantRow,
    MessageRow,
    RunRow,
    RunStepRow,
    ThreadRow,
)
from portway.store.pagination import Page, PageRequest, paginate
from portway.store.pseudonyms import drop_pseudonyms

logger = logging.getLogger(__name__)

# What a failed run or step says when the code that failed it gave no reason.
UNEXPLAINED_FAILURE = {"code": "server_error", "message": "The run failed on the server."}


async def _page(
    session: AsyncSession,
    row_type: Any,
    conditions: Sequence[ColumnElement[bool]],
    page: PageRequest,
) -> Page[Any]:
    """A page of ``row_type`` rows in insertion order (``seq``; cursors are ``id``s)."""
    query = select(row_type).where(*conditions)
    return await paginate(session, query, page, order_by=(row_type.seq,), cursor=row_type.id)


def _explained(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes``, with a ``last_error`` if they fail a run or step without one."""
    if changes.get("status") != "failed" or changes.get("last_error"):
        return changes
    logger.error("a run or step was failed without a last_error; giving it a generic one")
    return {**changes, "last_error": UNEXPLAINED_FAILURE}


async def _update_returning(
    session: AsyncSession,
    row_type: Any,
    conditions: Sequence[ColumnElement[bool]],
    changes: dict[str, Any],
) -> Any:
    return await update_returning(session, row_type, conditions, _explained(changes))


class AssistantStore:
    """Assistants, threads and messages."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # Assistants ----------------------------------------------------------------

    async def create_assistant(self, row: AssistantRow) -> AssistantRow:
        async with self._db.session() as session:
            session.add(row)
        return row

    async def get_assistant(self, tenant: str, assistant_id: str) -> AssistantRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(AssistantRow).where(
                    AssistantRow.id == assistant_id, AssistantRow.tenant == tenant
                )
            )
            return found.scalar_one_or_none()

    async def list_assistants(self, tenant: str, page: PageRequest) -> Page[AssistantRow]:
        async with self._db.session() as session:
            return await _page(session, AssistantRow, [AssistantRow.tenant == tenant], page)

    async def update_assistant(
        self, tenant: str, assistant_id: str, changes: dict[str, Any]
    ) -> AssistantRow | None:
        async with self._db.session() as session:
            return await _update_returning(  # type: ignore[no-any-return]
                session,
                AssistantRow,
                [AssistantRow.id == assistant_id, AssistantRow.tenant == tenant],
                changes,
            )

    async def delete_assistant(self, tenant: str, assistant_id: str) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                delete(AssistantRow).where(
                    AssistantRow.id == assistant_id, AssistantRow.tenant == tenant
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # Threads -------------------------------------------------------------------

    async def create_thread(self, thread: ThreadRow, messages: Iterable[MessageRow]) -> ThreadRow:
        """The thread and its first messages, in one transaction (messages keep their order)."""
        async with self._db.session() as session:
            session.add(thread)
            await session.flush()
            for message in messages:
                session.add(message)
                await session.flush()
        return thread

    async def get_thread(self, tenant: str, thread_id: str) -> ThreadRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(ThreadRow).where(ThreadRow.id == thread_id, ThreadRow.tenant == tenant)
            )
            return found.scalar_one_or_none()

    async def update_thread(
        self, tenant: str, thread_id: str, changes: dict[str, Any]
    ) -> ThreadRow | None:
        async with self._db.session() as session:
            return await _update_returning(  # type: ignore[no-any-return]
                session, ThreadRow, [ThreadRow.id == thread_id, ThreadRow.tenant == tenant], changes
            )

    async def change_thread(
        self,
        tenant: str,
        thread_id: str,
        change: Callable[[ThreadRow], dict[str, Any]],
    ) -> ThreadRow | None:
        """Apply the changes ``change`` derives from the thread's current row, with the row
        locked (``FOR UPDATE`` on PostgreSQL; the process's write lock on SQLite)."""
        async with self._db.write_session() as session:
            owned = ThreadRow.id == thread_id, ThreadRow.tenant == tenant
            found = await session.execute(select(ThreadRow).where(*owned).with_for_update())
            thread = found.scalar_one_or_none()
            if thread is None:
                return None
            changes = change(thread)
            if not changes:
                return thread
            return await _update_returning(  # type: ignore[no-any-return]
                session, ThreadRow, list(owned), changes
            )

    async def delete_thread(self, tenant: str, thread_id: str) -> bool:
        """Delete a thread with its messages, runs and steps."""
        async with self._db.session() as session:
            owned = ThreadRow.id == thread_id, ThreadRow.tenant == tenant
            exists = await session.execute(select(ThreadRow.id).where(*owned))
            if exists.scalar_one_or_none() is None:
                return False
            # Explicit deletes, children first: no reliance on ON DELETE CASCADE.
            run_ids = select(RunRow.id).where(RunRow.thread_id == thread_id)
            await session.execute(delete(RunStepRow).where(RunStepRow.run_id.in_(run_ids)))
            await session.execute(delete(RunRow).where(RunRow.thread_id == thread_id))
            await session.execute(delete(MessageRow).where(MessageRow.thread_id == thread_id))
            await session.execute(drop_pseudonyms(tenant, thread_id))
            await session.execute(delete(ThreadRow).where(*owned))
            return True

    # Messages ------------------------------------------------------------------

    async def create_message(self, message: MessageRow) -> MessageRow:
        async with self._db.session() as session:
            session.add(message)
        return message

    async def get_message(self, tenant: str, thread_id: str, message_id: str) -> MessageRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(MessageRow).where(
                    MessageRow.id == message_id,
                    MessageRow.thread_id == thread_id,
                    MessageRow.tenant == tenant,
                )
            )
            return found.scalar_one_or_none()

    async def list_messages(
        self, tenant: str, thread_id: str, page: PageRequest, run_id: str | None = None
    ) -> Page[MessageRow]:
        conditions = [MessageRow.thread_id == thread_id, MessageRow.tenant == tenant]
        if run_id is not None:
            conditions.append(MessageRow.run_id == run_id)
        async with self._db.session() as session:
            return await _page(session, MessageRow, conditions, page)

    async def update_message(
        self, tenant: str, thread_id: str, message_id: str, changes: dict[str, Any]
    ) -> MessageRow | None:
        async with self._db.session() as session:
            return await _update_returning(  # type: ignore[no-any-return]
                session,
                MessageRow,
                [
                    MessageRow.id == message_id,
                    MessageRow.thread_id == thread_id,
                    MessageRow.tenant == tenant,
                ],
                changes,
            )

    async def delete_message(self, tenant: str, thread_id: str, message_id: str) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                delete(MessageRow).where(
                    MessageRow.id == message_id,
                    MessageRow.thread_id == thread_id,
                    MessageRow.tenant == tenant,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def thread_messages(self, thread_id: str) -> list[MessageRow]:
        """Every message of a thread, oldest first (the engine builds its context from them)."""
        async with self._db.session() as session:
            found = await session.execute(
                select(MessageRow).where(MessageRow.thread_id == thread_id).order_by(MessageRow.seq)
            )
            return list(found.scalars())


# A queued run created by a streaming request is reserved for the process serving the
# stream (holder and lease set): only it claims the run, others once the lease lapsed.
RUNS = JobKind(
    waiting=("queued",),
    held=("in_progress", "cancelling"),
    reservable=True,
    unset_lease_lapsed=False,
)


class RunStore(JobQueue[RunRow]):
    """Runs and run steps, and the state transitions the run engine makes (claims and
    leases from ``JobQueue``)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database, RunRow, RUNS)

    # Client-facing reads and writes ---------------------------------------------

    async def create(self, run: RunRow, messages: Iterable[MessageRow] = ()) -> RunRow:
        """A new run and the ``additional_messages`` it adds to its thread, atomically."""
        async with self._db.session() as session:
            for message in messages:
                session.add(message)
                await session.flush()
            session.add(run)
        return run

    async def get(self, tenant: str, thread_id: str, run_id: str) -> RunRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(RunRow).where(
                    RunRow.id == run_id, RunRow.thread_id == thread_id, RunRow.tenant == tenant
                )
            )
            return found.scalar_one_or_none()

    async def get_by_id(self, run_id: str) -> RunRow | None:
        async with self._db.session() as session:
            found = await session.execute(select(RunRow).where(RunRow.id == run_id))
            return found.scalar_one_or_none()

    async def list(self, tenant: str, thread_id: str, page: PageRequest) -> Page[RunRow]:
        async with self._db.session() as session:
            return await _page(
                session, RunRow, [RunRow.thread_id == thread_id, RunRow.tenant == tenant], page
            )

    async def update_metadata(
        self, tenant: str, thread_id: str, run_id: str, metadata: dict[str, str]
    ) -> RunRow | None:
        async with self._db.session() as session:
            return await _update_returning(  # type: ignore[no-any-return]
                session,
                RunRow,
                [RunRow.id == run_id, RunRow.thread_id == thread_id, RunRow.tenant == tenant],
                {"meta": metadata},
            )

    async def active_run(self, thread_id: str) -> RunRow | None:
        """The thread's run that is not finished yet, if any (a thread runs one at a time)."""
        async with self._db.session() as session:
            found = await session.execute(
                select(RunRow)
                .where(RunRow.thread_id == thread_id, RunRow.status.in_(RUN_ACTIVE))
                .limit(1)
            )
            return found.scalar_one_or_none()

    async def get_step(
        self, tenant: str, thread_id: str, run_id: str, step_id: str
    ) -> RunStepRow | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(RunStepRow).where(
                    RunStepRow.id == step_id,
                    RunStepRow.run_id == run_id,
                    RunStepRow.thread_id == thread_id,
                    RunStepRow.tenant == tenant,
                )
            )
            return found.scalar_one_or_none()

    async def list_steps(
        self, tenant: str, thread_id: str, run_id: str, page: PageRequest
    ) -> Page[RunStepRow]:
        conditions = [
            RunStepRow.run_id == run_id,
            RunStepRow.thread_id == thread_id,
            RunStepRow.tenant == tenant,
        ]
        async with self._db.session() as session:
            return await _page(session, RunStepRow, conditions, page)

    # Engine: claiming and leases (the rest is ``JobQueue``'s) -------------------

    def _claimed(self, now: float) -> dict[str, Any]:
        return {"started_at": func.coalesce(RunRow.started_at, now)}

    async def _handed_back(self, session: AsyncSession, job_id: str) -> None:
        """Forget the run's unfinished turn: the half-written message and the unfinished
        steps of that turn are deleted, and the next worker repeats the model call from
        the stored state."""
        unfinished = RunStepRow.run_id == job_id, RunStepRow.status == "in_progress"
        await session.execute(delete(RunStepRow).where(*unfinished))
        await session.execute(
            delete(MessageRow).where(
                MessageRow.run_id == job_id, MessageRow.status == "in_progress"
            )
        )

    async def due_to_expire(self, now: float) -> list[RunRow]:
        async with self._db.session() as session:
            found = await session.execute(
                select(RunRow).where(RunRow.status == "requires_action", RunRow.expires_at <= now)
            )
            return list(found.scalars())

    # Engine: transitions -----------------------------------------------------------

    async def transition(
        self,
        run_id: str,
        expected: Sequence[str],
        changes: dict[str, Any],
        *,
        owner: str | None = None,
    ) -> RunRow | None:
        """Apply ``changes`` if the run is in one of the ``expected`` statuses (and, when
        ``owner`` is given, still held by it); ``None`` when it is not."""
        conditions = [RunRow.id == run_id, RunRow.status.in_(expected)]
        if owner is not None:
            conditions.append(RunRow.owner == owner)
        async with self._db.session() as session:
            return await _update_returning(  # type: ignore[no-any-return]
                session, RunRow, conditions, changes
            )

    async def finish(
        self,
        run_id: str,
        expected: Sequence[str],
        changes: dict[str, Any],
        *,
        step_changes: dict[str, Any],
        message_changes: dict[str, Any],
        then: Callable[[RunRow], dict[str, Any]] | None = None,
    ) -> tuple[RunRow, list[RunStepRow], list[MessageRow]] | None:
        """End a run: apply ``changes`` (guarded by ``expected``), then ``then(run)``'s
        changes computed from the updated row, and close its unfinished steps and
        messages, in one transaction. Returns the run and the steps and messages closed."""
        async with self._db.session() as session:
            guarded = [RunRow.id == run_id, RunRow.status.in_(expected)]
            run = await _update_returning(session, RunRow, guarded, changes)
            if run is None:
                return None
            if then is not None:
                run = await _update_returning(session, RunRow, [RunRow.id == run_id], then(run))
            steps = await _close_unfinished(session, RunStepRow, run_id, step_changes)
            messages = await _close_unfinished(session, MessageRow, run_id, message_changes)
            return run, steps, messages

    # Engine: steps and messages ----------------------------------------------------

    async def add_step(self, step: RunStepRow, message: MessageRow | None = None) -> RunStepRow:
        async with self._db.session() as session:
            if message is not None:
                session.add(message)
                await session.flush()
            session.add(step)
        return step

    async def update_step(self, step_id: str, changes: dict[str, Any]) -> RunStepRow | None:
        async with self._db.session() as session:
            return await _update_returning(  # type: ignore[no-any-return]
                session, RunStepRow, [RunStepRow.id == step_id], changes
            )

    async def update_step_and_run(
        self,
        step_id: str,
        step_changes: dict[str, Any],
        run_id: str,
        expected: Sequence[str],
        run_changes: dict[str, Any],
    ) -> tuple[RunStepRow, RunRow] | None:
        """Change a step and its run together, if the run is in an ``expected`` status."""
        try:
            async with self._db.session() as session:
                run = await _update_returning(
                    session, RunRow, [RunRow.id == run_id, RunRow.status.in_(expected)], run_changes
                )
                step = await _update_returning(
                    session, RunStepRow, [RunStepRow.id == step_id], step_changes
                )
                if run is None or step is None:
                    raise _Unchanged
                return step, run
        except _Unchanged:
            return None

    async def update_message(self, message_id: str, changes: dict[str, Any]) -> MessageRow | None:
        async with self._db.session() as session:
            return await _update_returning(  # type: ignore[no-any-return]
                session, MessageRow, [MessageRow.id == message_id], changes
            )

    async def steps_of(self, run_id: str) -> list[RunStepRow]:
        async with self._db.session() as session:
            found = await session.execute(
                select(RunStepRow).where(RunStepRow.run_id == run_id).order_by(RunStepRow.seq)
            )
            return list(found.scalars())


async def _close_unfinished(
    session: AsyncSession, row_type: Any, run_id: str, changes: dict[str, Any]
) -> list[Any]:
    """Apply ``changes`` to a run's steps or messages still ``in_progress``."""
    if not changes:
        return []
    found = await session.execute(
        update(row_type)
        .where(row_type.run_id == run_id, row_type.status == "in_progress")
        .values(**_explained(changes))
        .returning(row_type)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return list(found.scalars())


class _Unchanged(Exception):
    """Rolls a transaction back when one of its guarded updates matched nothing."""
