"""Live sessions, one per (tenant, thread): bounded in number, closed when idle.

As root, each session runs as a uid leased for its lifetime (``uids.py``), so no two
sessions on the machine share a user: one session's processes count only against its
own ``RLIMIT_NPROC``. Without root each session has its own user namespace anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass

from portway.assistants.code_interpreter.boundary import Boundary
from portway.assistants.code_interpreter.session import Session, SessionBroken
from portway.assistants.code_interpreter.uids import NoFreeUid, UidLease, UidRange
from portway.config import CodeInterpreterConfig
from portway.errors import ServiceUnavailableError

logger = logging.getLogger(__name__)

NOBODY = 65534  # the uid inside a session's own user namespace (Portway not root)


@dataclass(frozen=True, slots=True)
class SessionKey:
    tenant: str
    thread_id: str


@dataclass(slots=True)
class _Entry:
    session: Session
    lease: UidLease | None


async def start_session(boundary: Boundary, uids: UidRange) -> tuple[Session, UidLease | None]:
    """A new session (as a leased uid when root); raises ``SessionBroken``."""
    lease = None
    if boundary.as_root:
        try:
            lease = await asyncio.to_thread(uids.lease)
        except (NoFreeUid, OSError) as error:
            raise SessionBroken(f"no sandbox uid: {error}") from None
    try:
        session = await Session.start(boundary, lease.uid if lease else NOBODY)
    except BaseException:
        if lease is not None:
            lease.release()
        raise
    return session, lease


class SessionPool:
    def __init__(self, boundary: Boundary, config: CodeInterpreterConfig, uids: UidRange) -> None:
        self._boundary = boundary
        self._config = config
        self._entries: OrderedDict[SessionKey, _Entry] = OrderedDict()
        self._uids = uids
        self._lock = asyncio.Lock()
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def session(self, key: SessionKey) -> tuple[Session, bool]:
        """The key's live session, or a new one (``True``); raises ``SessionBroken``."""
        async with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.session.alive:
                self._entries.move_to_end(key)
                return entry.session, False
            if entry is not None:
                await self._drop(key)
            if len(self._entries) >= self._config.max_sessions:
                await self._evict_one()
            session, lease = await start_session(self._boundary, self._uids)
            self._entries[key] = _Entry(session, lease)
            return session, True

    async def discard(self, key: SessionKey, session: Session) -> None:
        """Close ``session`` and forget it (if it is still the key's session)."""
        async with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.session is session:
                await self._drop(key)
                return
        await session.close()
        session.release_workdir()

    async def _drop(self, key: SessionKey) -> None:
        entry = self._entries.pop(key)
        await entry.session.close()
        entry.session.release_workdir()
        if entry.lease is not None:
            entry.lease.release()

    async def _evict_one(self) -> None:
        """Close the least recently used idle session to make room."""
        for key, entry in self._entries.items():
            if not entry.session.lock.locked():
                await self._drop(key)
                return
        raise ServiceUnavailableError(
            "every code_interpreter session is busy (code_interpreter.max_sessions)"
        )

    async def sweep(self) -> None:
        """Close the sessions idle for longer than ``idle_seconds``."""
        now = asyncio.get_running_loop().time()
        async with self._lock:
            idle = [
                key
                for key, entry in self._entries.items()
                if not entry.session.lock.locked()
                and now - entry.session.last_used > self._config.idle_seconds
            ]
            for key in idle:
                await self._drop(key)

    async def _sweep_forever(self) -> None:
        interval = min(self._config.idle_seconds / 2, 30.0)
        while True:
            await asyncio.sleep(interval)
            await self.sweep()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        async with self._lock:
            for key in list(self._entries):
                await self._drop(key)

    def __len__(self) -> int:
        return len(self._entries)
