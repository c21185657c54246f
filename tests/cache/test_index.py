"""The in-process vector index: partitions, thresholds, bounds, compaction, big searches."""

from __future__ import annotations

import numpy as np
import pytest

from portway.cache.semantic import index as index_module
from portway.cache.semantic.index import MatrixIndex


def unit_vectors(count: int, dimensions: int = 16, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dimensions)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


A = ("team-a", "m", "ctx")
B = ("team-b", "m", "ctx")


async def test_search_finds_the_nearest_within_its_partition_only() -> None:
    vectors = unit_vectors(50)
    index = MatrixIndex(max_entries=1000)
    for row, vector in enumerate(vectors):
        await index.add(A, vector, f"a{row}")
    await index.add(B, vectors[7], "b7")
    matches = await index.search(A, vectors[7], threshold=0.99)
    assert [m.key for m in matches] == ["a7"]
    assert matches[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert [m.key for m in await index.search(B, vectors[7], threshold=0.99)] == ["b7"]
    assert await index.search(("team-c", "m", "ctx"), vectors[7], threshold=0.5) == []


async def test_matches_are_ranked_and_limited() -> None:
    base = unit_vectors(1)[0]
    index = MatrixIndex(max_entries=100)
    for step in range(6):
        noisy = base + 0.05 * step * unit_vectors(1, seed=step + 1)[0]
        await index.add(A, noisy / np.linalg.norm(noisy), f"k{step}")
    matches = await index.search(A, base, threshold=0.0, limit=3)
    assert [m.key for m in matches] == ["k0", "k1", "k2"]
    assert matches[0].similarity >= matches[1].similarity >= matches[2].similarity


async def test_oldest_vectors_go_first_when_full_and_removal_compacts() -> None:
    vectors = unit_vectors(40)
    index = MatrixIndex(max_entries=30)
    for row, vector in enumerate(vectors):
        await index.add(A, vector, f"k{row}")
    assert len(index) == 30
    assert await index.search(A, vectors[5], threshold=0.99) == []
    for row in range(10, 30):
        await index.remove(f"k{row}")  # more than half dead: the partition is compacted
    assert len(index) == 10
    for row in (30, 39):
        assert [m.key for m in await index.search(A, vectors[row], threshold=0.99)] == [f"k{row}"]
    await index.add(A, vectors[39], "k39")  # re-adding a key replaces it
    assert len(index) == 10


async def test_purge_by_namespace_and_model() -> None:
    vectors = unit_vectors(3)
    index = MatrixIndex(max_entries=10)
    await index.add(A, vectors[0], "a")
    await index.add(B, vectors[1], "b")
    await index.add(("team-a", "other", "ctx"), vectors[2], "c")
    assert await index.purge("team-a", "m") == 1
    assert await index.purge(None, "other") == 1
    assert len(index) == 1
    assert [m.key for m in await index.search(B, vectors[1], threshold=0.9)] == ["b"]


async def test_large_partitions_are_searched_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "INLINE_SEARCH_ROWS", 8)
    calls: list[str] = []
    real = index_module.asyncio.to_thread

    async def spy(function, *args):  # type: ignore[no-untyped-def]
        calls.append(function.__name__)
        return await real(function, *args)

    monkeypatch.setattr(index_module.asyncio, "to_thread", spy)
    vectors = unit_vectors(20)
    index = MatrixIndex(max_entries=100)
    for row, vector in enumerate(vectors):
        await index.add(A, vector, f"k{row}")
    assert [m.key for m in await index.search(A, vectors[3], threshold=0.99)] == ["k3"]
    assert calls == ["best_matches"]


async def test_vectors_of_another_size_are_ignored() -> None:
    index = MatrixIndex(max_entries=10)
    await index.add(A, unit_vectors(1, 16)[0], "k16")
    await index.add(A, unit_vectors(1, 8)[0], "k8")
    assert len(index) == 1
    assert await index.search(A, unit_vectors(1, 8)[0], threshold=0.0) == []
