"""Does Portway's memory stay flat under a long run of proxied chat completions?

Starts the instant upstream and a Portway in front of it (the same harness and config as
``overhead.py``: one OpenAI-compatible deployment, default pipeline, plus a master key),
drives ``--requests`` chat completions at ``--concurrency``, and prints Portway's
resident set size (``VmRSS`` from ``/proc/<pid>/status``) and its ledger queue every
``--interval`` requests. The verdict compares the RSS at the end with the RSS after
``--warmup`` requests. Calls use the master key unless ``--virtual-key`` (a key with rate
limits and a budget); ``--stream-every``, ``--request-ids`` and ``--no-keep-alive`` vary
the traffic.

``--trace DIR`` runs Portway under tracemalloc (``traced_portway.py``; several times
slower) and also prints the traced total at each interval and, at the end, the
allocation sites that grew most between the warm-up snapshot and the last one.

    PYTHONPATH=src python benchmarks/soak.py --requests 1000000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from overhead import REQUEST, upstream_and_portway
from traced_portway import snapshot_name

HERE = Path(__file__).resolve().parent
MB = 1024 * 1024
MASTER_KEY = "pw-soak-master"
SNAPSHOT_TIMEOUT = 600.0  # a big traced heap takes a while to pickle on a busy machine
STREAM_REQUEST = orjson.dumps({**orjson.loads(REQUEST), "stream": True})


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (``VmRSS``, reported in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Tracer:
    """Asks the traced Portway for a snapshot and waits until it is written."""

    pid: int
    directory: Path
    taken: int = 0

    async def snapshot(self) -> tuple[Path, int, int]:
        """The snapshot's path, the traced total and tracemalloc's own memory."""
        name = snapshot_name(self.taken)
        self.taken += 1
        os.kill(self.pid, signal.SIGUSR1)
        pickle = self.directory / f"{name}.pickle"
        deadline = time.monotonic() + SNAPSHOT_TIMEOUT
        while not pickle.exists():  # written by another process: poll for it
            if time.monotonic() > deadline:
                raise RuntimeError(f"Portway wrote no snapshot {pickle} (is it traced?)")
            await asyncio.sleep(0.05)
        sizes = json.loads((self.directory / f"{name}.json").read_text())
        return pickle, int(sizes["traced"]), int(sizes["tracemalloc"])


async def ledger_queued(base: str) -> int:
    """Usage rows waiting for the database: a backlog would grow memory too."""
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{base}/v1/admin/queues") as response,
    ):
        response.raise_for_status()
        return int((await response.json())["ledger_queued"])


@dataclass
class Soak:
    pid: int
    base: str  # Portway's base URL
    interval: int
    warmup: int
    tracer: Tracer | None
    done: int = 0
    errors: int = 0
    began: float = field(default_factory=time.perf_counter)
    warm_rss: int | None = None
    warm_snapshot: Path | None = None
    last_snapshot: Path | None = None
    samples: list[tuple[int, int]] = field(default_factory=list)

    async def checkpoint(self) -> None:
        rss = rss_bytes(self.pid)
        self.samples.append((self.done, rss))
        elapsed = time.perf_counter() - self.began
        line = (
            f"{self.done:>10,} requests {elapsed:>8.1f} s {self.done / elapsed:>7.0f} rps"
            f"  RSS {rss / MB:>7.1f} MB"
        )
        if self.done >= self.warmup and self.warm_rss is None:
            self.warm_rss = rss
        if self.warm_rss is not None:
            line += f"  {100 * (rss - self.warm_rss) / self.warm_rss:>+6.1f}% vs warm-up"
        if self.tracer is not None:
            path, traced, overhead = await self.tracer.snapshot()
            line += f"  traced {traced / MB:>6.1f} MB (+{overhead / MB:.1f} MB tracemalloc's own)"
            if self.warm_snapshot is None and self.warm_rss is not None:
                self.warm_snapshot = path
            self.last_snapshot = path
        line += f"  ledger queue {await ledger_queued(self.base):>6}  errors {self.errors}"
        print(line, flush=True)


@dataclass(frozen=True)
class Load:
    """What the requests look like."""

    requests: int
    concurrency: int
    stream_every: int = 0  # every n-th request is streamed (0: none)
    request_ids: bool = False  # the client sends its own x-request-id, new each time
    secret: str = MASTER_KEY  # the bearer token (a virtual key's secret with --virtual-key)
    keep_alive: bool = True  # False: a new connection per request


async def create_virtual_key(base: str) -> str:
    """A virtual key with every per-key feature on: rate limits, a budget, a model list."""
    body = {
        "name": "soak",
        "models": ["bench"],
        "rpm": 1_000_000_000,
        "tpm": 2_000_000_000,
        "max_budget": 1_000_000,
        "budget_period": "total",
    }
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(f"{base}/v1/admin/keys", json=body) as response,
    ):
        response.raise_for_status()
        return str((await response.json())["key"])


async def drive(url: str, soak: Soak, load: Load) -> None:
    remaining = load.requests
    connector = aiohttp.TCPConnector(limit=load.concurrency, force_close=not load.keep_alive)
    headers = {"content-type": "application/json", "authorization": f"Bearer {load.secret}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                number = load.requests - remaining
                streamed = load.stream_every > 0 and number % load.stream_every == 0
                extra = {"x-request-id": f"soak-{number}"} if load.request_ids else None
                body = STREAM_REQUEST if streamed else REQUEST
                async with session.post(url, data=body, headers=extra) as response:
                    await response.read()
                    if response.status != 200:
                        soak.errors += 1
                soak.done += 1
                if soak.done % soak.interval == 0 or soak.done == soak.warmup:
                    await soak.checkpoint()

        await soak.checkpoint()  # before any request: the process as started
        await asyncio.gather(*(worker() for _ in range(load.concurrency)))


def show_growth(warm: Path, last: Path, top: int) -> None:
    """The allocation sites that grew most between two snapshots."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before = tracemalloc.Snapshot.load(str(warm)).filter_traces(ignore)
    after = tracemalloc.Snapshot.load(str(last)).filter_traces(ignore)
    print(f"\ntop {top} growing allocation sites (warm-up -> end):")
    for stat in after.compare_to(before, "traceback")[:top]:
        print(f"{stat.size_diff / 1024:>+10.1f} KiB {stat.count_diff:>+8} blocks")
        for frame in stat.traceback.format(limit=4, most_recent_first=True):
            print(f"      {frame}")


def verdict(soak: Soak, tolerance: float) -> bool:
    assert soak.warm_rss is not None
    end = soak.samples[-1][1]
    growth = 100 * (end - soak.warm_rss) / soak.warm_rss
    ok = growth <= tolerance
    print(
        f"\nRSS after warm-up ({soak.warmup:,} requests): {soak.warm_rss / MB:.1f} MB; "
        f"after {soak.done:,} requests: {end / MB:.1f} MB ({growth:+.1f}%); "
        f"errors: {soak.errors}; {'PASS' if ok else 'FAIL'} (limit +{tolerance:g}%)"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--interval", type=int, default=20_000, help="print RSS every K requests")
    parser.add_argument("--warmup", type=int, default=20_000, help="requests before the baseline")
    parser.add_argument("--tolerance", type=float, default=10.0, help="allowed growth, percent")
    parser.add_argument("--trace", type=Path, help="run Portway under tracemalloc; snapshots here")
    parser.add_argument("--top", type=int, default=15, help="growing sites to show (--trace)")
    parser.add_argument("--stream-every", type=int, default=0, help="stream every n-th request")
    parser.add_argument("--request-ids", action="store_true", help="send a new x-request-id each")
    parser.add_argument("--no-keep-alive", action="store_true", help="a connection per request")
    parser.add_argument(
        "--virtual-key",
        action="store_true",
        help="call with a virtual key that has rate limits and a budget (not the master key)",
    )
    parser.add_argument("--config-extra", default="", help="YAML appended to the bench config")
    args = parser.parse_args()
    if args.warmup >= args.requests:
        parser.error("--warmup must be smaller than --requests")

    launcher: tuple[str, ...] = (sys.executable, "-m", "portway")
    env: dict[str, str] = {}
    if args.trace is not None:
        launcher = (sys.executable, str(HERE / "traced_portway.py"))
        env["PORTWAY_TRACE_DIR"] = str(args.trace)
        args.trace.mkdir(parents=True, exist_ok=True)
    print(
        f"{os.cpu_count()} cores; {args.requests:,} chat completions at concurrency "
        f"{args.concurrency} against an instant upstream; MALLOC_ARENA_MAX="
        f"{os.environ.get('MALLOC_ARENA_MAX', 'unset')}",
        flush=True,
    )
    config = f"master_key: {MASTER_KEY}\n" + args.config_extra
    # Under tracemalloc every import allocates traced memory: start-up takes minutes.
    startup = 600.0 if args.trace is not None else 60.0
    with upstream_and_portway(config, launcher=launcher, env=env, startup_timeout=startup) as (
        _,
        url,
        pid,
    ):
        base = url.removesuffix("/v1/chat/completions")
        secret = MASTER_KEY
        if args.virtual_key:
            secret = asyncio.run(create_virtual_key(base))
        load = Load(
            args.requests,
            args.concurrency,
            args.stream_every,
            args.request_ids,
            secret,
            keep_alive=not args.no_keep_alive,
        )
        tracer = Tracer(pid, args.trace) if args.trace is not None else None
        soak = Soak(pid, base, args.interval, args.warmup, tracer)
        asyncio.run(drive(url, soak, load))
        if soak.samples[-1][0] != soak.done:
            asyncio.run(soak.checkpoint())
    if args.trace is not None and soak.warm_snapshot and soak.last_snapshot:
        show_growth(soak.warm_snapshot, soak.last_snapshot, args.top)
    return 0 if verdict(soak, args.tolerance) else 1


if __name__ == "__main__":
    sys.exit(main())
