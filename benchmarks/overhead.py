"""How much latency and throughput does Portway cost over calling the upstream directly?

Starts an upstream that answers instantly (a separate process), then a Portway in front
of it (another process), and drives the same closed-loop load at each: a fixed
concurrency for a fixed number of chat completion requests. Prints RPS and p50/p99 for
both and the difference. Everything runs on loopback.

    python benchmarks/overhead.py [--requests 5000] [--concurrency 32] [--workers 2] [--floor]
    python benchmarks/overhead.py --compare-workers 1,2   # throughput per worker count

The load generator is this process (one asyncio loop, aiohttp); Portway and the upstream
each run in their own processes (with ``--workers N``, Portway's supervisor and its N
workers). ``--floor`` also measures the floor of Portway's server stack: the same uvicorn
(uvloop, httptools, Portway's HTTP protocol) relaying the body through Portway's upstream
client with no pipeline at all, in its own process; what Portway adds above it is the
pipeline's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

REQUEST = orjson.dumps(
    {
        "model": "bench",
        "messages": [{"role": "user", "content": "Say hello in one word."}],
        "max_tokens": 8,
    }
)
STREAM_REQUEST = orjson.dumps({**orjson.loads(REQUEST), "stream": True})

UPSTREAM = r"""
import sys, time, orjson
from aiohttp import web
BODY = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
    "model": "bench-upstream",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello",
                 "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
})
CHUNKS = [orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()),
    "model": "bench-upstream", "choices": choices, "usage": usage,
}) for choices, usage in (
    ([{"index": 0, "delta": {"role": "assistant", "content": "Hello"}, "finish_reason": None}],
     None),
    ([{"index": 0, "delta": {}, "finish_reason": "stop"}], None),
    ([], {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}),
)]
STREAM = b"".join(b"data: " + chunk + b"\n\n" for chunk in CHUNKS) + b"data: [DONE]\n\n"
async def chat(request):
    body = await request.read()
    if b'"stream":true' in body:  # the benchmarks send compact JSON
        return web.Response(body=STREAM, content_type="text/event-stream")
    return web.Response(body=BODY, content_type="application/json")
app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

FLOOR = r"""
import sys, uvicorn
from portway.http_protocol import CoalescingHttpToolsProtocol
from portway.providers.transport import HttpClient, frame
upstream_port, port = int(sys.argv[1]), int(sys.argv[2])
client = HttpClient("http", "127.0.0.1", upstream_port, connect_timeout=5)
head = client.head("POST", "/v1/chat/completions", {"content-type": "application/json"})
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await client.start()
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    answer = await client.request(frame(head, body), 30) if body else None
    await send({"type": "http.response.start", "status": answer.status if answer else 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer.body if answer else b"{}"})
uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http=CoalescingHttpToolsProtocol,
            log_level="warning", access_log=False)
"""


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (Linux /proc: a supervisor's
    workers), robust to a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_ready(port: int, timeout: float = 60.0) -> None:
    """Until Portway answers ``/health/ready`` (every worker of it may still be starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Portway on port {port} did not become ready")


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


async def drive(
    name: str, url: str, requests: int, concurrency: int, body: bytes = REQUEST
) -> Result:
    latencies: list[float] = []
    errors = 0
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"content-type": "application/json", "authorization": "Bearer bench"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(url, data=body) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        # warm-up: open the connections and let both servers settle
        for _ in range(concurrency * 4):
            async with session.post(url, data=body) as response:
                await response.read()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return Result(
        name,
        rps=len(latencies) / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99) - 1] * 1000,
        errors=errors,
    )


async def first_tokens(name: str, url: str, requests: int) -> Result:
    """Streams one at a time: the time from sending to the first content chunk (the
    rest of each stream is read too, untimed)."""
    latencies: list[float] = []
    errors = 0
    headers = {"content-type": "application/json", "authorization": "Bearer bench"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for index in range(requests + 20):  # the first 20 warm up
            started = time.perf_counter()
            first = None
            async with session.post(url, data=STREAM_REQUEST) as response:
                async for line in response.content:
                    if first is None and line.startswith(b"data: ") and b'"content"' in line:
                        first = time.perf_counter() - started
                if response.status != 200 or first is None:
                    errors += 1
            if index >= 20 and first is not None:
                latencies.append(first)
    latencies.sort()
    return Result(
        name,
        rps=0.0,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99) - 1] * 1000,
        errors=errors,
    )


@contextlib.contextmanager
def upstream_and_portway(
    config_extra: str = "",
    *,
    launcher: Sequence[str] = (sys.executable, "-m", "portway"),
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 60.0,
    workers: int = 1,
) -> Iterator[tuple[str, str, int]]:
    """Run the instant upstream and a Portway in front of it, each in its own process.

    ``launcher`` is the command that takes ``serve ...`` (e.g. a wrapper that traces
    allocations); ``env`` is added to Portway's environment. Yields (direct URL, Portway
    URL, Portway's pid) for chat completions.
    """
    upstream_port, portway_port = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(
            "models:\n"
            "  - name: bench\n"
            "    provider: openai\n"
            f"    base_url: http://127.0.0.1:{upstream_port}/v1\n"
            "    api_key: sk-bench\n"
            f"database_url: sqlite:///{tmp}/portway.db\n" + config_extra
        )
        portway_env = {**os.environ, "PORTWAY_LOG_LEVEL": "warning", **(env or {})}
        serve = [
            *launcher,
            "serve",
            "--config",
            str(config),
            "--port",
            str(portway_port),
            *(("--workers", str(workers)) if workers > 1 else ()),
        ]
        try:
            processes.append(subprocess.Popen([sys.executable, "-c", UPSTREAM, str(upstream_port)]))
            processes.append(subprocess.Popen(serve, env=portway_env))
            wait_for_port(upstream_port)
            wait_for_port(portway_port, startup_timeout)
            wait_for_ready(portway_port, startup_timeout)
            yield (
                f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
                f"http://127.0.0.1:{portway_port}/v1/chat/completions",
                processes[1].pid,
            )
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)


@contextlib.contextmanager
def floor_proxy(direct_url: str) -> Iterator[str]:
    """The server stack's floor in front of the upstream at ``direct_url``: its URL."""
    upstream_port = urllib.parse.urlsplit(direct_url).port
    port = free_port()
    assert upstream_port is not None
    process = subprocess.Popen([sys.executable, "-c", FLOOR, str(upstream_port), str(port)])
    try:
        wait_for_port(port)
        wait_for_ready(port)
        yield f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        process.terminate()
        process.wait(10)


def show(title: str, results: tuple[Result, ...]) -> None:
    """Rows for direct, (floor,) Portway; the added figures are Portway's over direct."""
    print(title)
    print(f"{'target':<10}{'rps':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for result in results:
        print(
            f"{result.name:<10}{result.rps:>10.0f}{result.p50_ms:>10.3f}"
            f"{result.p99_ms:>10.3f}{result.errors:>8}"
        )
    direct, gateway = results[0], results[-1]
    print(
        f"added p50: {gateway.p50_ms - direct.p50_ms:.3f} ms, "
        f"added p99: {gateway.p99_ms - direct.p99_ms:.3f} ms, "
        f"throughput ratio: {gateway.rps / direct.rps:.2f}"
    )
    if len(results) == 3:
        floor = results[1]
        print(
            f"the floor adds p50 {floor.p50_ms - direct.p50_ms:.3f} ms; "
            f"Portway above the floor: p50 {gateway.p50_ms - floor.p50_ms:.3f} ms"
        )
    print()


def busy_cores() -> float:
    """Cores' worth of busy time since boot (Linux /proc/stat: all but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def compare_workers(counts: list[int], requests: int, concurrency: int, extra: str) -> None:
    """Throughput at ``concurrency`` for each worker count, against the same upstream, with
    where the machine's CPU went: Portway's processes, and everything else (the load
    generator and the upstream share the same cores)."""
    print(f"{os.cpu_count()} cores; {requests} chat completions at concurrency {concurrency}\n")
    print(
        f"{'workers':<10}{'rps':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
        f"{'portway cores':>15}{'other cores':>13}"
    )
    baseline = None
    for count in counts:
        with upstream_and_portway(extra, workers=count) as (_, portway_url, pid):
            asyncio.run(drive("warm-up", portway_url, concurrency * 20, concurrency))
            portway_before, busy_before, began = cpu_seconds(pid), busy_cores(), time.monotonic()
            result = asyncio.run(drive(f"{count}", portway_url, requests, concurrency))
            elapsed = time.monotonic() - began
            portway = (cpu_seconds(pid) - portway_before) / elapsed
            others = (busy_cores() - busy_before) / elapsed - portway
        baseline = baseline or result.rps
        print(
            f"{result.name:<10}{result.rps:>10.0f}{result.p50_ms:>10.3f}"
            f"{result.p99_ms:>10.3f}{result.errors:>8}{portway:>15.2f}{others:>13.2f}"
            f"   x{result.rps / baseline:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--config-extra", default="", help="YAML appended to the bench config")
    parser.add_argument("--workers", type=int, default=1, help="portway serve --workers N")
    parser.add_argument(
        "--compare-workers", help="comma-separated worker counts: throughput of each"
    )
    parser.add_argument(
        "--floor", action="store_true", help="also measure the bare server stack's floor"
    )
    args = parser.parse_args()
    if args.compare_workers:
        counts = [int(count) for count in args.compare_workers.split(",")]
        compare_workers(counts, args.requests, args.concurrency, args.config_extra)
        return

    with contextlib.ExitStack() as stack:
        direct_url, portway_url, portway_pid = stack.enter_context(
            upstream_and_portway(args.config_extra, workers=args.workers)
        )
        floor_url = stack.enter_context(floor_proxy(direct_url)) if args.floor else None

        def run(name: str, url: str | None, requests: int, concurrency: int) -> list[Result]:
            if url is None:
                return []
            return [asyncio.run(drive(name, url, requests, concurrency))]

        loaded = (
            *run("direct", direct_url, args.requests, args.concurrency),
            *run("floor", floor_url, args.requests, args.concurrency),
            *run("portway", portway_url, args.requests, args.concurrency),
        )
        serial = args.requests // 5
        direct_serial = run("direct", direct_url, serial, 1)
        floor_serial = run("floor", floor_url, serial, 1)
        cpu_before = cpu_seconds(portway_pid)
        portway_serial = run("portway", portway_url, serial, 1)
        cpu_per_request = (cpu_seconds(portway_pid) - cpu_before) / (serial + 4)
        unloaded = (*direct_serial, *floor_serial, *portway_serial)
        streams = (
            asyncio.run(first_tokens("direct", direct_url, serial)),
            asyncio.run(first_tokens("portway", portway_url, serial)),
        )

    print(f"{os.cpu_count()} cores; chat completions against an instant upstream")
    print(f"portway serve --workers {args.workers}\n")
    show(f"throughput: {args.requests} requests at concurrency {args.concurrency}", loaded)
    show(f"latency: {serial} requests at concurrency 1", unloaded)
    print(f"Portway CPU per request: {cpu_per_request * 1e6:.0f} us\n")
    direct, gateway = streams
    print(f"time to first token: {serial} streams at concurrency 1")
    print(f"{'target':<10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for result in streams:
        print(f"{result.name:<10}{result.p50_ms:>10.3f}{result.p99_ms:>10.3f}{result.errors:>8}")
    print(
        f"added TTFT p50: {gateway.p50_ms - direct.p50_ms:.3f} ms, "
        f"added TTFT p99: {gateway.p99_ms - direct.p99_ms:.3f} ms"
    )


if __name__ == "__main__":
    main()
