"""What does an answer from the cache cost, next to the bare HTTP round trip?

Starts an upstream that answers instantly and a Portway in front of it with the exact
and semantic caches on (separate processes, loopback), then measures at concurrency 1:
the bare round trip to the upstream, a call through Portway that passes the cache by
(sampled, so not cacheable), an exact hit, and a semantic hit (a new wording every
time, so each one embeds the question with the local MiniLM and searches the index),
and a semantic miss (a new question: embedding, search, upstream call, store).
Then exact-hit throughput at a fixed concurrency, and, in this process, the semantic
lookup alone (one context holding 10k and 100k vectors) and one local embedding.

    python benchmarks/cache.py [--requests 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import numpy as np
import orjson
from overhead import upstream_and_portway

from portway.cache.semantic.embedder import bundled_model_path
from portway.cache.semantic.index import MatrixIndex, best_matches
from portway.cache.semantic.minilm import BertSentenceEncoder

QUESTION = "Say hello in one word."
Body = Callable[[int], bytes]


def body(content: str, temperature: float) -> bytes:
    return orjson.dumps(
        {
            "model": "bench",
            "messages": [{"role": "user", "content": content}],
            "temperature": temperature,
            "max_tokens": 8,
        }
    )


def exact_hit(_: int) -> bytes:
    return body(QUESTION, 0)


def passed_by(_: int) -> bytes:
    return body(QUESTION, 0.7)  # sampled: the deterministic policy does not cache it


def reworded(index: int) -> bytes:
    # A whitespace tail unique to each request: a new exact key every time, the same
    # tokens for the embedding model, so every request is a semantic hit.
    tail = "".join(" " if bit == "0" else "\n" for bit in bin(index + 2)[2:])
    return body(QUESTION + tail, 0)


# fmt: off
WORDS = [
    "apple", "river", "stone", "garden", "window", "music", "engine", "planet", "doctor",
    "winter", "market", "bridge", "castle", "pencil", "ocean", "forest", "camera", "letter",
    "island", "rocket", "silver", "thunder", "mirror", "blanket", "candle", "dragon", "harbor",
    "jungle", "ladder", "meadow", "needle", "orange", "pillow", "rabbit", "saddle", "tunnel",
    "velvet", "wagon", "yogurt", "zipper", "anchor", "bakery", "cactus", "desert", "falcon",
    "glacier", "hammer", "igloo", "jacket", "kettle", "lemon", "magnet", "nickel", "oyster",
    "parrot", "quartz",
]
# fmt: on


def new_question(index: int) -> bytes:
    # Random words: almost never within the threshold of an earlier question, so each
    # request pays for an embedding and a search, then goes upstream and is stored.
    rng = np.random.default_rng(index)
    words = " ".join(rng.choice(WORDS, size=7))
    return body(f"Why would a {words}?", 0)


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def drive(name: str, url: str, make: Body, requests: int, concurrency: int) -> Result:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    counter = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"content-type": "application/json", "authorization": "Bearer bench"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one() -> None:
            nonlocal counter
            counter += 1
            payload = make(counter)
            started = time.perf_counter()
            async with session.post(url, data=payload) as response:
                await response.read()
                status = response.headers.get("x-portway-cache", str(response.status))
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

        async def worker(count: int) -> None:
            for _ in range(count):
                await one()

        for _ in range(max(20, concurrency * 2)):  # warm-up: connections, first entry
            await one()
        latencies.clear()
        statuses.clear()
        began = time.perf_counter()
        share, extra = divmod(requests, concurrency)
        await asyncio.gather(*(worker(share + (i < extra)) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(
        name,
        rps=len(latencies) / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        statuses=statuses,
    )


def show(title: str, results: list[Result], baseline: Result) -> None:
    print(title)
    print(f"{'target':<22}{'rps':>8}{'p50 ms':>9}{'p99 ms':>9}{'+p50 ms':>9}  x-portway-cache")
    for result in results:
        added = result.p50_ms - baseline.p50_ms
        print(
            f"{result.name:<22}{result.rps:>8.0f}{result.p50_ms:>9.3f}{result.p99_ms:>9.3f}"
            f"{added:>9.3f}  {result.statuses}"
        )
    print()


def timed(function: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, percentile(samples, 0.99) * 1000


async def index_search_ms(index: MatrixIndex, query: np.ndarray, repeat: int) -> float:
    partition = ("bench", "bench", "ctx")
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await index.search(partition, query, 0.9)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def lookup_section(sizes: list[int], repeat: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # as the server runs it
    print("semantic lookup in one context (384-d float32, normalized, one BLAS thread)")
    print(f"{'vectors':>9}{'matrix MB':>11}{'product p50':>13}{'p99 ms':>9}{'search() p50':>14}")
    rng = np.random.default_rng(7)
    for size in sizes:
        vectors = rng.standard_normal((size, 384), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        query = vectors[size // 2]
        keys: list[str | None] = [f"k{i}" for i in range(size)]
        p50, p99 = timed(lambda v=vectors, k=keys, q=query: best_matches(v, k, q, 0.9, 3), repeat)
        index = MatrixIndex(max_entries=size)
        for row in range(size):
            index.insert(("bench", "bench", "ctx"), vectors[row], f"k{row}")
        searched = asyncio.run(index_search_ms(index, query, repeat))
        print(f"{size:>9}{vectors.nbytes / 1e6:>11.1f}{p50:>13.3f}{p99:>9.3f}{searched:>14.3f}")
    encoder = BertSentenceEncoder.from_directory(bundled_model_path())
    sentence = ["How do I reset the password of my account?"]
    cpu_before = time.process_time()
    p50, p99 = timed(lambda: encoder.encode(sentence), 50)
    cpu_ms = (time.process_time() - cpu_before) / 50 * 1000
    print(
        f"\nlocal embedding (all-MiniLM-L6-v2, NumPy, 12 tokens): p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms, CPU {cpu_ms:.2f} ms per sentence"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sizes", default="10000,100000", help="index sizes to time")
    args = parser.parse_args()

    cache_config = "cache:\n  enabled: true\n  semantic: {enabled: true, threshold: 0.9}\n"
    with upstream_and_portway(cache_config) as (direct, portway, _pid):
        serial = max(200, args.requests // 4)
        bare = asyncio.run(drive("bare upstream", direct, exact_hit, serial, 1))
        latency = [
            asyncio.run(drive("portway, no cache", portway, passed_by, serial, 1)),
            asyncio.run(drive("portway, exact hit", portway, exact_hit, serial, 1)),
            asyncio.run(drive("portway, semantic hit", portway, reworded, serial, 1)),
            asyncio.run(drive("portway, semantic miss", portway, new_question, serial, 1)),
        ]
        loaded_bare = asyncio.run(
            drive("bare upstream", direct, exact_hit, args.requests, args.concurrency)
        )
        loaded = [
            asyncio.run(
                drive("portway, exact hit", portway, exact_hit, args.requests, args.concurrency)
            )
        ]

    print(f"{os.cpu_count()} cores; chat completions, instant upstream, cache in memory\n")
    show(f"latency: {serial} requests at concurrency 1", [bare, *latency], bare)
    show(
        f"throughput: {args.requests} requests at concurrency {args.concurrency}",
        [loaded_bare, *loaded],
        loaded_bare,
    )
    lookup_section([int(size) for size in args.sizes.split(",")], repeat=50)


if __name__ == "__main__":
    main()
