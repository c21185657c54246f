"""What does a Response cost over a chat completion of the same content?

Starts the instant upstream and a Portway in front of it (``overhead.py``'s processes),
then sends, one at a time, the same question as a chat completion, as a non-stored
response (``store: false``) and as a stored one (its row and input item written), in
alternating rounds. Prints each one's p50/p99 and the p50 added over the chat completion.

    python benchmarks/responses_overhead.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import orjson
from overhead import REQUEST, drive, upstream_and_portway

QUESTION = "Say hello in one word."
NOT_STORED = orjson.dumps(
    {"model": "bench", "input": QUESTION, "max_output_tokens": 8, "store": False}
)
STORED = orjson.dumps({"model": "bench", "input": QUESTION, "max_output_tokens": 8})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    p50s: dict[str, list[float]] = {"chat": [], "not stored": [], "stored": []}
    p99s: dict[str, list[float]] = {name: [] for name in p50s}
    with upstream_and_portway() as (_, chat_url, _pid):
        responses_url = chat_url.replace("/chat/completions", "/responses")
        targets = {
            "chat": (chat_url, REQUEST),
            "not stored": (responses_url, NOT_STORED),
            "stored": (responses_url, STORED),
        }
        for _ in range(args.rounds):
            for name, (url, body) in targets.items():
                result = asyncio.run(drive(name, url, args.requests, 1, body))
                assert result.errors == 0, f"{name}: {result.errors} errors"
                p50s[name].append(result.p50_ms)
                p99s[name].append(result.p99_ms)
    chat = statistics.median(p50s["chat"])
    print(f"{args.requests} requests x {args.rounds} rounds at concurrency 1 (median of rounds)")
    print(f"{'target':<12}{'p50 ms':>10}{'p99 ms':>10}{'added p50 ms':>14}")
    for name in p50s:
        p50, p99 = statistics.median(p50s[name]), statistics.median(p99s[name])
        print(f"{name:<12}{p50:>10.3f}{p99:>10.3f}{p50 - chat:>14.3f}")


if __name__ == "__main__":
    main()
