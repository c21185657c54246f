"""``AuditLog``: what Portway appends to the hash-chained audit log, and its checks.

- Admin actions (keys, budgets, team policies, cache purges, user data deletions) are
  appended before the admin call answers: ``record``.
- With ``audit.requests`` each model call's metadata (who, model, endpoint, status,
  guardrails that fired; never content) is queued by ``AuditStage`` and appended in
  batches every ``audit.flush_interval_ms`` (and at shutdown).
- Every ``audit.checkpoint_interval_seconds`` the chain head is signed into a checkpoint
  (HMAC-SHA256 with the server key), when records were added since the last one.
- ``verify`` walks the whole chain (``portway audit verify``); ``export`` yields JSONL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from portway.config import AuditConfig
from portway.security.audit_chain import (
    ChainVerifier,
    Checkpoint,
    VerifyReport,
    canonical_json,
    key_id,
    sign_checkpoint,
)
from portway.security.principal import Principal
from portway.security.server_keys import ServerKey
from portway.store.audit import AuditRepository, NewRecord
from portway.store.database import Database

logger = logging.getLogger(__name__)

# The purpose of the server key checkpoints are signed with (HMAC-SHA256).
PURPOSE = "audit-checkpoints"
_MAX_BATCH = 500
# Request records held while the database is unreachable; past this they are dropped
# (counted and logged) rather than let memory grow without bound.
MAX_PENDING = 100_000


def actor_of(principal: Principal | str) -> str:
    """``master``, ``anonymous`` (open server), ``key:<id>``, ``system:<id>`` or a name."""
    if isinstance(principal, str):
        return principal
    if principal.kind == "virtual_key":
        return f"key:{principal.key_id}"
    if principal.kind == "system":
        return f"system:{principal.key_id}"
    return principal.kind


def _micros(now: float) -> int:
    return int(now * 1_000_000)


class AuditLog:
    def __init__(
        self,
        repository: AuditRepository,
        config: AuditConfig,
        key: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.config = config
        self._key = key
        self._clock = clock
        self._pending: list[NewRecord] = []
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    @classmethod
    def build(cls, config: AuditConfig, database: Database, server_key: ServerKey) -> AuditLog:
        return cls(AuditRepository(database), config, server_key.derive(PURPOSE))

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    @property
    def records_requests(self) -> bool:
        return self.config.enabled and self.config.requests

    def _new(
        self,
        kind: str,
        action: str,
        actor: Principal | str,
        subject: str | None,
        details: Mapping[str, Any] | None,
    ) -> NewRecord:
        return NewRecord(
            created_us=_micros(self._clock()),
            kind=kind,
            action=action,
            actor=actor_of(actor)[:200],
            subject=subject[:200] if subject is not None else None,
            details=canonical_json(dict(details or {})),
        )

    async def record(
        self,
        action: str,
        actor: Principal | str,
        subject: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an admin action now (with any queued request records before it)."""
        if not self.enabled:
            return
        record = self._new("admin", action, actor, subject, details)
        async with self._flushing:
            pending, self._pending = self._pending, []
            await self.repository.append([*pending, record])

    def request(
        self, actor: Principal | str, subject: str | None, details: Mapping[str, Any]
    ) -> None:
        """Queue one model call's metadata (appended by the background flusher)."""
        if not self.records_requests:
            return
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.error("audit log: %d request records dropped (database down?)", self.dropped)
            return
        self._pending.append(self._new("request", "model.call", actor, subject, details))

    async def flush(self) -> int:
        async with self._flushing:
            appended = 0
            # What was pending when it began: records queued meanwhile wait for the next
            # flush (draining until empty never ends under steady traffic).
            remaining = len(self._pending)
            while self._pending and remaining > 0:
                size = min(remaining, _MAX_BATCH)
                remaining -= size
                batch, self._pending = self._pending[:size], self._pending[size:]
                try:
                    await self.repository.append(batch)
                except BaseException:
                    self._pending[:0] = batch  # kept for the next attempt
                    raise
                appended += len(batch)
            return appended

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the head if records were appended since the last checkpoint."""
        seq, chain_hash = await self.repository.head()
        if seq == 0 or seq <= await self.repository.last_checkpoint_seq():
            return None
        created = _micros(self._clock())
        key = self._key
        checkpoint = Checkpoint(
            seq=seq,
            hash=chain_hash,
            created_us=created,
            key_id=key_id(key),
            signature=sign_checkpoint(key, seq, chain_hash, created),
        )
        await self.repository.add_checkpoint(checkpoint)
        return checkpoint

    async def verify(self) -> VerifyReport:
        verifier = ChainVerifier(await self.repository.checkpoints(), self._key)
        async for record in self.repository.scan():
            verifier.add(record)
        seq, chain_hash = await self.repository.head()
        return verifier.finish(seq, chain_hash)

    async def export(self) -> AsyncIterator[str]:
        """Every record as one JSON line, in sequence order."""
        async for record in self.repository.scan():
            yield canonical_json(record.as_json())

    # Background work -----------------------------------------------------------------

    async def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name="portway-audit")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.enabled:
            while self._pending:
                await self.flush()
            await self.checkpoint()

    async def _run(self) -> None:
        interval = self.config.flush_interval_ms / 1000
        next_checkpoint = time.monotonic() + self.config.checkpoint_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
                if time.monotonic() >= next_checkpoint:
                    next_checkpoint = time.monotonic() + self.config.checkpoint_interval_seconds
                    await self.checkpoint()
            except Exception:
                # The database may be briefly unreachable: records stay queued; retried.
                logger.exception("audit log: append or checkpoint failed; will retry")
