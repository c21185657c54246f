"""Where circuit-breaker state lives: in this process, or in Redis for every replica.

Contract: a ``BreakerStore`` keeps one ``BreakerRecord`` per deployment key and
performs each transition atomically, so that several processes sharing a store agree
on whether a deployment is open, who holds its half-open probe and until when it is
rate-limited. Timestamps are wall-clock seconds (``time.time()``) because they are
compared across processes. ``generation`` increases on every open and close, which
lets each process reset its local failure counters when another process changed the
state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """The shared state of one deployment's breaker."""

    open: bool = False
    open_until: float = 0.0
    level: int = 0  # how many times in a row it re-opened (cooldown grows with it)
    throttled_until: float = 0.0  # rate-limited (429) until then, independent of `open`
    probing: bool = False  # a half-open probe is in flight somewhere
    generation: int = 0


CLOSED = BreakerRecord()


class BreakerStore(Protocol):
    """Atomic breaker transitions over a keyed set of ``BreakerRecord``s."""

    kind: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def load(self, keys: Sequence[str]) -> list[BreakerRecord]:
        """The records of ``keys``, in order (``CLOSED`` for unknown keys)."""
        ...

    async def trip(self, key: str, until: float, level: int) -> bool:
        """Open a closed circuit until ``until``; False if it was open already."""
        ...

    async def reopen(self, key: str, until: float, level: int) -> None:
        """Open again after a failed probe (whatever the current state)."""
        ...

    async def reset(self, key: str) -> None:
        """Close the circuit after a successful probe and drop the probe claim."""
        ...

    async def claim_probe(self, key: str, ttl: float) -> bool:
        """Take the single half-open probe slot for ``ttl`` seconds; False if taken."""
        ...

    async def release_probe(self, key: str) -> None: ...

    async def throttle(self, key: str, until: float) -> None:
        """Rate-limited until ``until`` (the later of this and any current throttle)."""
        ...


@dataclass(slots=True)
class _Entry:
    record: BreakerRecord
    probe_until: float = 0.0


class MemoryBreakerStore:
    """Single-process breaker state (the default when no Redis is configured)."""

    kind = "memory"

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _entry(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(CLOSED)
        return entry

    async def load(self, keys: Sequence[str]) -> list[BreakerRecord]:
        now = time.time()
        records = []
        for key in keys:
            entry = self._entries.get(key)
            if entry is None:
                records.append(CLOSED)
            elif entry.probe_until > now:
                records.append(replace(entry.record, probing=True))
            else:
                records.append(entry.record)
        return records

    async def trip(self, key: str, until: float, level: int) -> bool:
        entry = self._entry(key)
        if entry.record.open:
            return False
        self._open(entry, until, level)
        return True

    async def reopen(self, key: str, until: float, level: int) -> None:
        self._open(self._entry(key), until, level)

    @staticmethod
    def _open(entry: _Entry, until: float, level: int) -> None:
        entry.record = replace(
            entry.record,
            open=True,
            open_until=until,
            level=level,
            generation=entry.record.generation + 1,
        )
        entry.probe_until = 0.0

    async def reset(self, key: str) -> None:
        entry = self._entry(key)
        entry.record = replace(
            entry.record,
            open=False,
            open_until=0.0,
            level=0,
            generation=entry.record.generation + 1,
        )
        entry.probe_until = 0.0

    async def claim_probe(self, key: str, ttl: float) -> bool:
        entry = self._entry(key)
        now = time.time()
        if entry.probe_until > now:
            return False
        entry.probe_until = now + ttl
        return True

    async def release_probe(self, key: str) -> None:
        self._entry(key).probe_until = 0.0

    async def throttle(self, key: str, until: float) -> None:
        entry = self._entry(key)
        if until > entry.record.throttled_until:
            entry.record = replace(entry.record, throttled_until=until)


def build_breaker_store(redis_url: str | None) -> BreakerStore:
    """Redis when a URL is configured (shared by every process), else process memory."""
    if redis_url is None:
        return MemoryBreakerStore()
    from portway.routing.state_redis import RedisBreakerStore  # only needed with Redis

    return RedisBreakerStore(redis_url)
