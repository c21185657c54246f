"""The storage interface every cache backend implements.

Contract: values are opaque bytes under an ``EntryKey``. ``keep_for`` is how long the
backend must keep the value at least (the logical TTL plus the stale window); after
that it may drop it. Logical expiry is the cache's business, not the backend's, so
stale answers stay readable for the degradation path. ``purge`` removes every entry
of a namespace and/or model (both None: everything) and says how many it removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from portway.cache.keys import EntryKey


@dataclass(frozen=True, slots=True)
class BackendUsage:
    entries: int
    bytes: int


class CacheBackend(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, key: EntryKey) -> bytes | None: ...

    async def set(self, key: EntryKey, value: bytes, keep_for: float) -> None: ...

    async def purge(self, namespace: str | None, model: str | None) -> int: ...

    async def usage(self) -> BackendUsage: ...
