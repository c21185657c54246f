"""Reliability benchmark: how many calls succeed through Portway when deployments misbehave.

Three fake OpenAI-compatible deployments serve one model group: one fails 30% of its
requests with a 500 (run twice: failures spread evenly, then at random), one answers
every request with a 429 and `retry-after: 1`, and one is healthy. A fixed number of
chat completions is sent through a real Portway (`portway serve`, its own process) at a
fixed concurrency; the client sees only Portway. Printed: client-visible success rate,
p50/p99 latency, how many attempts the calls took and how the upstream traffic was
spread. A baseline run with three healthy deployments shows what the faults cost.

    PYTHONPATH=src:. python benchmarks/reliability.py [--requests 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.fakes.openai_upstream import (  # noqa: E402
    Action,
    Cycle,
    Fail,
    FakeOpenAI,
    Reply,
    Sometimes,
)
from tests.fakes.server import free_port  # noqa: E402

MODEL = "chat"


@dataclass
class Result:
    ok: bool
    seconds: float
    attempts: int
    deployment: str | None
    status: int


def _config(fakes: list[FakeOpenAI]) -> dict[str, Any]:
    return {
        "log_level": "warning",
        "models": [
            {
                "name": MODEL,
                "provider": "openai",
                "model": "fake",
                "base_url": fake.base_url,
                "api_key": "sk-bench",
            }
            for fake in fakes
        ],
        # Defaults otherwise: weighted-random, backoff 250ms..8s, breaker 5 in a row or 50 %.
        "router": {MODEL: {"retries": 2}},
    }


class Portway:
    """`python -m portway serve` on a free port, configured from a dict."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory()
        path = Path(self._dir.name) / "portway.yaml"
        database_url = f"sqlite:///{self._dir.name}/portway.db"
        path.write_text(yaml.safe_dump({"database_url": database_url, **config}))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
        command = [sys.executable, "-m", "portway", "serve", "--config", str(path)]
        self.process = subprocess.Popen([*command, "--port", str(self.port)], env=env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{self.url}/health/live") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("Portway did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._dir.cleanup()


async def _one(session: aiohttp.ClientSession, url: str, index: int) -> Result:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": f"request {index}"}]}
    started = time.perf_counter()
    try:
        async with session.post(f"{url}/v1/chat/completions", json=payload) as response:
            body = await response.json(content_type=None)
            ok = response.status == 200 and bool(body.get("choices"))
            return Result(
                ok,
                time.perf_counter() - started,
                int(response.headers.get("x-portway-attempts", 0)),
                response.headers.get("x-portway-deployment"),
                response.status,
            )
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return Result(False, time.perf_counter() - started, 0, None, 0)


async def _drive(url: str, requests: int, concurrency: int) -> tuple[list[Result], float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        queue = iter(range(requests))
        results: list[Result] = []

        async def worker() -> None:
            for index in queue:
                results.append(await _one(session, url, index))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return results, time.perf_counter() - started


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _scenario(
    name: str, actions: list[Action], requests: int, concurrency: int
) -> dict[str, Any]:
    fakes = [FakeOpenAI() for _ in actions]
    for fake, action in zip(fakes, actions, strict=True):
        fake.start()
        fake.default = action
    portway = Portway(_config(fakes))
    try:
        async with aiohttp.ClientSession() as session:
            await portway.wait_ready(session)
            await _drive(portway.url, 50, 4)  # warm-up: connections, imports, first samples
            async with session.get(f"{portway.url}/health/deployments") as response:
                await response.read()
        for fake in fakes:
            fake.requests.clear()
        results, elapsed = await _drive(portway.url, requests, concurrency)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{portway.url}/health/deployments") as response,
        ):
            health = await response.json()
    finally:
        portway.stop()
        for fake in fakes:
            fake.stop()
    latencies = [r.seconds * 1000 for r in results]
    ok = [r for r in results if r.ok]
    return {
        "name": name,
        "requests": len(results),
        "success": len(ok) / len(results),
        "failed_statuses": Counter(r.status for r in results if not r.ok),
        "rps": len(results) / elapsed,
        "p50": _percentile(latencies, 0.50),
        "p99": _percentile(latencies, 0.99),
        "mean": statistics.fmean(latencies),
        "attempts": Counter(r.attempts for r in ok),
        "served_by": Counter(r.deployment for r in ok),
        "upstream_requests": [len(fake.requests) for fake in fakes],
        "states": {row["id"]: row["state"] for row in health["data"]},
    }


def _print(report: dict[str, Any]) -> None:
    print(f"\n== {report['name']} ==")
    print(
        f"requests {report['requests']}  success {report['success'] * 100:.2f}%  "
        f"rps {report['rps']:.0f}"
    )
    print(
        f"latency ms  p50 {report['p50']:.1f}  p99 {report['p99']:.1f}  mean {report['mean']:.1f}"
    )
    if report["failed_statuses"]:
        print(f"failed statuses {dict(report['failed_statuses'])}")
    print(f"attempts per successful call {dict(sorted(report['attempts'].items()))}")
    print(f"served by {dict(report['served_by'])}")
    print(f"upstream requests per deployment {report['upstream_requests']}")
    print(f"breaker states at the end {report['states']}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    healthy = [Reply(), Reply(), Reply()]
    limited = Fail(429, message="slow down", headers={"retry-after": "1"})
    ok, error = Reply(), Fail(500)
    # Exactly 3 failures in every 10 requests, never two in a row.
    even = Cycle([error, ok, ok, error, ok, ok, error, ok, ok, ok])
    print(f"{args.requests} requests, concurrency {args.concurrency}, 3 deployments")
    baseline = await _scenario("baseline: 3 healthy", healthy, args.requests, args.concurrency)
    _print(baseline)
    reports = [
        await _scenario(
            "faults: 30% 500s (3 in every 10) | always 429 retry-after 1s | healthy",
            [even, limited, Reply()],
            args.requests,
            args.concurrency,
        ),
        await _scenario(
            "faults: 30% 500s (random) | always 429 retry-after 1s | healthy",
            [Sometimes(0.3, error, seed=42), limited, Reply()],
            args.requests,
            args.concurrency,
        ),
    ]
    for report in reports:
        _print(report)
        print(
            f"cost vs baseline: p50 {report['p50'] - baseline['p50']:+.1f} ms, "
            f"p99 {report['p99'] - baseline['p99']:+.1f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
