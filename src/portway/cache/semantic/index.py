"""The in-process vector index: one normalized float32 matrix per context, searched by one product.

Contract: vectors live in partitions ``(namespace, model, context digest)``; a search
only ever compares against its own partition, so tenants and contexts never mix.
``search`` returns the best entries whose cosine similarity reaches the threshold,
best first. The index holds at most ``max_entries`` vectors (oldest dropped first).
Large partitions are searched on a worker thread against a snapshot: rows are only
appended or blanked in place and compaction builds new arrays, so a snapshot's row
numbers keep meaning the same entries while the loop goes on changing the index.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

Vector = NDArray[np.float32]
Partition = tuple[str, str, str]  # namespace, model, context digest
INITIAL_ROWS = 16
# Below this many rows a product takes microseconds: cheaper than a thread hop.
INLINE_SEARCH_ROWS = 4096
# Compact a partition once this share of its rows are blanked.
COMPACT_DEAD_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Match:
    similarity: float
    key: str


class _Block:
    """One partition's rows: vectors[:count] and the entry key of each (None: removed)."""

    __slots__ = ("count", "dead", "keys", "vectors")

    def __init__(self, dimensions: int) -> None:
        self.vectors: Vector = np.zeros((INITIAL_ROWS, dimensions), dtype=np.float32)
        self.keys: list[str | None] = []
        self.count = 0
        self.dead = 0

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])

    def append(self, vector: Vector, key: str) -> int:
        if self.count == len(self.vectors):
            grown = np.zeros((len(self.vectors) * 2, self.dimensions), dtype=np.float32)
            grown[: self.count] = self.vectors[: self.count]
            self.vectors = grown
        row = self.count
        self.vectors[row] = vector
        self.keys.append(key)
        self.count += 1
        return row

    def blank(self, row: int) -> None:
        self.vectors[row] = 0.0
        self.keys[row] = None
        self.dead += 1

    def compacted(self) -> tuple[_Block, dict[str, int]]:
        """A fresh block with only the live rows (new arrays: snapshots stay valid)."""
        live = [row for row in range(self.count) if self.keys[row] is not None]
        block = _Block(self.dimensions)
        capacity = max(INITIAL_ROWS, 1 << max(0, len(live) - 1).bit_length())
        block.vectors = np.zeros((capacity, self.dimensions), dtype=np.float32)
        block.vectors[: len(live)] = self.vectors[live]
        block.keys = [self.keys[row] for row in live]
        block.count = len(live)
        rows = {key: row for row, key in enumerate(block.keys) if key is not None}
        return block, rows


def best_matches(
    vectors: Vector, keys: list[str | None], query: Vector, threshold: float, limit: int
) -> list[Match]:
    """The ``limit`` rows most similar to ``query`` at or above ``threshold``, best first."""
    scores = vectors @ query
    candidates = np.flatnonzero(scores >= threshold)
    if len(candidates) > limit:
        candidates = candidates[np.argpartition(-scores[candidates], limit)[:limit]]
    ordered = candidates[np.argsort(-scores[candidates])]
    matches = []
    for row in ordered:
        key = keys[row]
        if key is not None:
            matches.append(Match(float(scores[row]), key))
    return matches


class MatrixIndex:
    """Vectors by partition, in this process."""

    name = "memory"

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._blocks: dict[Partition, _Block] = {}
        # Insertion order doubles as the eviction order.
        self._rows: OrderedDict[str, tuple[Partition, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    async def start(self) -> None:
        """Nothing to acquire."""

    async def close(self) -> None:
        self._blocks.clear()
        self._rows.clear()

    async def add(self, partition: Partition, vector: Vector, key: str) -> None:
        self.insert(partition, vector, key)

    def insert(self, partition: Partition, vector: Vector, key: str) -> None:
        if key in self._rows:
            self.discard(key)
        block = self._blocks.get(partition)
        if block is None:
            block = self._blocks[partition] = _Block(len(vector))
        if len(vector) != block.dimensions:
            logger.warning(
                "semantic cache: dropped a %d-dimensional vector for a %d-dimensional index "
                "(did the embedding model change?)",
                len(vector),
                block.dimensions,
            )
            return
        self._rows[key] = (partition, block.append(vector, key))
        while len(self._rows) > self.max_entries:
            self.discard(next(iter(self._rows)))

    def discard(self, key: str) -> None:
        """Forget one entry (its cached answer expired or was evicted)."""
        located = self._rows.pop(key, None)
        if located is None:
            return
        partition, row = located
        block = self._blocks[partition]
        block.blank(row)
        if block.dead == block.count:
            del self._blocks[partition]
        elif block.count >= INITIAL_ROWS and block.dead >= block.count * COMPACT_DEAD_SHARE:
            fresh, rows = block.compacted()
            self._blocks[partition] = fresh
            for moved, new_row in rows.items():
                self._rows[moved] = (partition, new_row)

    async def remove(self, key: str) -> None:
        self.discard(key)

    def drop(self, namespace: str | None, model: str | None) -> int:
        doomed = [
            partition
            for partition in self._blocks
            if (namespace is None or partition[0] == namespace)
            and (model is None or partition[1] == model)
        ]
        removed = 0
        for partition in doomed:
            block = self._blocks.pop(partition)
            for key in block.keys[: block.count]:
                if key is not None and self._rows.pop(key, None) is not None:
                    removed += 1
        return removed

    async def purge(self, namespace: str | None, model: str | None) -> int:
        return self.drop(namespace, model)

    async def search(
        self, partition: Partition, query: Vector, threshold: float, limit: int = 3
    ) -> list[Match]:
        block = self._blocks.get(partition)
        if block is None or len(query) != block.dimensions:
            return []
        vectors, keys = block.vectors[: block.count], block.keys
        if block.count <= INLINE_SEARCH_ROWS:
            return best_matches(vectors, keys, query, threshold, limit)
        return await asyncio.to_thread(best_matches, vectors, keys, query, threshold, limit)
