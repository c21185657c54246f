"""Chaos benchmark for streams: how many complete for the client when upstreams cut them.

Three fake OpenAI-compatible deployments (continuing a final assistant message like
vLLM's ``continue_final_message``, so ``prefill: true``) serve one model group; each
upstream stream is cut with probability ``--cut`` at a random point after its first
chunk (half the cuts drop the connection, half send an error event). A real Portway
(`portway serve`, its own process) is driven with ``--streams`` streamed chat calls at
``--concurrency``, once with ``stream_resume`` on (the default) and once off. A stream
counts as completed when the client got ``[DONE]``, no error event, and exactly the
upstream's answer (nothing doubled, nothing missing).

    PYTHONPATH=src:. python benchmarks/chaos_streams.py [--streams 500] [--cut 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.reliability import Portway  # noqa: E402
from tests.fakes.openai_upstream import Action, Drop, ErrorEvent, FakeOpenAI, Reply  # noqa: E402

MODEL = "chat"
ANSWER = (
    "Resumed streams keep going: the gateway asks another deployment to continue the "
    "partial answer and splices the rest into the same stream, so the client never sees "
    "the cut at all."
)


@dataclass
class RandomCut(Action):
    """With probability ``cut``, stream a random number of chunks and then fail the stream."""

    cut: float
    rng: random.Random
    reply: Reply

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if self.rng.random() >= self.cut:
            return await self.reply.respond(request, body)
        chunks = len(self.reply.chunks(body))
        after = self.rng.randint(1, max(1, chunks - 3))  # before the finish and usage chunks
        broken: Action = (
            Drop(after=after, reply=self.reply)
            if self.rng.random() < 0.5
            else ErrorEvent(after=after, reply=self.reply)
        )
        return await broken.respond(request, body)


def _config(fakes: list[FakeOpenAI], resume: bool) -> dict[str, Any]:
    models = [
        {
            "name": MODEL,
            "provider": "openai",
            "model": "fake",
            "base_url": fake.base_url,
            "api_key": "sk-bench",
            "prefill": True,
        }
        for fake in fakes
    ]
    return {
        "log_level": "error",
        "models": models,
        "router": {MODEL: {"retries": 2, "stream_resume": resume}},
    }


async def _one(session: aiohttp.ClientSession, url: str, index: int) -> bool:
    payload = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"stream {index}"}],
        "stream": True,
    }
    text: list[str] = []
    try:
        async with session.post(f"{url}/v1/chat/completions", json=payload) as response:
            if response.status != 200:
                return False
            raw = (await response.read()).decode()
    except (aiohttp.ClientError, TimeoutError):
        return False
    events = [e.removeprefix("data: ") for e in raw.split("\n\n") if e.strip()]
    if not events or events[-1] != "[DONE]":
        return False
    for event in events[:-1]:
        chunk = orjson.loads(event)
        if "error" in chunk:
            return False
        for choice in chunk.get("choices") or ():
            text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text) == ANSWER


async def _drive(url: str, streams: int, concurrency: int) -> list[bool]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        queue = iter(range(streams))
        results: list[bool] = []

        async def worker() -> None:
            for index in queue:
                results.append(await _one(session, url, index))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return results


async def _scenario(resume: bool, streams: int, concurrency: int, cut: float, seed: int) -> int:
    fakes = [FakeOpenAI() for _ in range(3)]
    for number, fake in enumerate(fakes):
        fake.start()
        fake.default = RandomCut(cut, random.Random(seed + number), Reply(content=ANSWER))
    portway = Portway(_config(fakes, resume))
    try:
        async with aiohttp.ClientSession() as session:
            await portway.wait_ready(session)
        started = time.perf_counter()
        results = await _drive(portway.url, streams, concurrency)
        elapsed = time.perf_counter() - started
    finally:
        portway.stop()
        for fake in fakes:
            fake.stop()
    completed = sum(results)
    upstream = sum(len(fake.requests) for fake in fakes)
    print(
        f"stream_resume {'on ' if resume else 'off'}: {completed}/{streams} streams completed "
        f"({completed / streams * 100:.1f}%), {upstream} upstream streams, {elapsed:.1f}s"
    )
    return completed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cut", type=float, default=0.1, help="share of upstream streams cut")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"{args.streams} streams, {args.cut:.0%} of upstream streams cut mid-way")
    for resume in (True, False):
        await _scenario(resume, args.streams, args.concurrency, args.cut, args.seed)


if __name__ == "__main__":
    asyncio.run(main())
