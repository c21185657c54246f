"""The in-process backend: an LRU bounded by bytes (the default; one process only)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from portway.cache.backends.base import BackendUsage
from portway.cache.keys import EntryKey

# What a slot costs beyond its key and value (dict slot, dataclass, floats); an
# estimate, so the bound tracks the real footprint rather than payload bytes alone.
SLOT_OVERHEAD_BYTES = 160


@dataclass(slots=True)
class _Slot:
    key: EntryKey
    value: bytes
    drop_at: float
    size: int


class MemoryBackend:
    """Least recently used entries go first once ``max_bytes`` would be exceeded."""

    name = "memory"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._bytes = 0
        self.evictions = 0

    async def start(self) -> None:
        """Nothing to acquire."""

    async def close(self) -> None:
        self._slots.clear()
        self._bytes = 0

    async def get(self, key: EntryKey) -> bytes | None:
        text = key.text
        slot = self._slots.get(text)
        if slot is None:
            return None
        if slot.drop_at <= time.time():
            self._remove(text)
            return None
        self._slots.move_to_end(text)
        return slot.value

    async def set(self, key: EntryKey, value: bytes, keep_for: float) -> None:
        text = key.text
        size = len(text) + len(value) + SLOT_OVERHEAD_BYTES
        if text in self._slots:
            self._remove(text)
        if size > self.max_bytes:
            return
        self._slots[text] = _Slot(key, value, time.time() + keep_for, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._slots))
            self._remove(oldest)
            self.evictions += 1

    def _remove(self, text: str) -> None:
        slot = self._slots.pop(text)
        self._bytes -= slot.size

    async def purge(self, namespace: str | None, model: str | None) -> int:
        doomed = [
            text
            for text, slot in self._slots.items()
            if (namespace is None or slot.key.namespace == namespace)
            and (model is None or slot.key.model == model)
        ]
        for text in doomed:
            self._remove(text)
        return len(doomed)

    async def usage(self) -> BackendUsage:
        return BackendUsage(entries=len(self._slots), bytes=self._bytes)
