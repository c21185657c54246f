"""Cost of the context stage on a 100-turn conversation: counting + truncation.

Runs ``ContextStage.fit`` in-process on a fresh ``CallContext`` per call (so the prompt
is counted every time, as for a new request) against a model with a 2048-token window
and the o200k tokenizer (``gpt-4o``), and prints p50/p99 for: a prompt that fits
(counted only), ``truncate`` and ``middle-out`` (counted, then per-message costs, then
the drop) on a history seen before (a client resends it every turn: message costs are
remembered), and ``truncate`` on a history never seen (every message counted).

    PYTHONPATH=src python benchmarks/context_stage.py [--calls 2000] [--turns 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from portway.accounting.estimate import UsageEstimator
from portway.accounting.tokenizer import TokenizerService
from portway.config import AccountingConfig, ModelConfig
from portway.context.policy import ContextPolicy
from portway.context.stage import ContextStage
from portway.pipeline.base import CallContext
from portway.protocol.chat import ChatCompletionRequest
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.routes import RouteTable
from portway.security.principal import MASTER

WINDOW = 2048


def conversation(turns: int, seed: str = "") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are helpful."}]
    for turn in range(turns):
        messages.append(
            {"role": "user", "content": f"Question {turn}{seed}: tell me about topic {turn}."}
        )
        messages.append(
            {"role": "assistant", "content": f"Topic {turn} is a fine topic, details {turn}."}
        )
    messages.append({"role": "user", "content": "Now summarize everything."})
    return messages


async def run(calls: int, turns: int) -> None:
    config = ModelConfig(
        name="gpt-4o", provider="openai", base_url="http://127.0.0.1:9", context_window=WINDOW
    )
    catalog = ModelCatalog.from_configs([config], ProviderRegistry())
    routes = RouteTable({}, catalog.names())
    estimator = UsageEstimator(TokenizerService(), catalog, AccountingConfig(), routes)
    stage = ContextStage(ContextPolicy.from_models([config]), estimator)
    cases = {
        "fits (count only)": (10, "truncate", False),
        "truncate": (turns, "truncate", False),
        "middle-out": (turns, "middle-out", False),
        # every call a history never seen: no message cost is remembered
        "truncate, cold": (turns, "truncate", True),
    }
    print(f"{turns}-turn conversation ({2 * turns + 2} messages), window {WINDOW}, {calls} calls")
    for label, (length, strategy, cold) in cases.items():
        times: list[float] = []
        for call in range(calls):
            if call == 0 or cold:
                request = ChatCompletionRequest.model_validate(
                    {
                        "model": "gpt-4o",
                        "messages": conversation(length, f"-{label}-{call}" if cold else ""),
                        "max_tokens": 512,
                    }
                )
            ctx = CallContext("bench", MASTER, request, {"x-portway-context": strategy})
            ctx.count_prompt = estimator.count_prompt
            start = time.perf_counter()
            await stage.fit(ctx)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p50 = statistics.median(times)
        p99 = times[int(len(times) * 0.99) - 1]
        print(
            f"  {label:18s} p50 {p50:.3f} ms  p99 {p99:.3f} ms  "
            f"{ctx.response_headers.get('x-portway-context-tokens', '')}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.turns))


if __name__ == "__main__":
    main()
