"""Cost of the context stage on a 100-turn conversation: counting + truncation.

Runs ``ContextStage.fit`` in-process on a fresh ``CallContext`` per call (so the prompt
is counted every time, as for a new request) against a model with a 2048-token window
and the o200k tokenizer (``gpt-4o``), and prints p50/p99 for: a prompt that fits
(counted only), ``truncate`` and ``middle-out`` (counted, then per-message costs, then
the drop) on a history seen before (a client resends it every turn: message costs are
remembered), ``truncate`` on a history never seen (every message counted), and
``summarize`` once its summary is stored (the prefix hashed, one SQLite lookup, no model
call: the summarizer here is a stub that writes one summary on the first call).

    PYTHONPATH=src python benchmarks/context_stage.py [--calls 2000] [--turns 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from portway.accounting.estimate import UsageEstimator
from portway.accounting.tokenizer import TokenizerService
from portway.config import AccountingConfig, ModelConfig
from portway.context.compactor import Compactor
from portway.context.policy import ContextPolicy
from portway.context.recall import Recall
from portway.context.stage import ContextStage
from portway.context.summarizer import Folded
from portway.pipeline.base import CallContext
from portway.protocol.chat import ChatCompletionRequest
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.routes import RouteTable
from portway.security.principal import MASTER
from portway.store import Database
from portway.store.context import ContextRepository

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


class StubSummarizer:
    """Writes one fixed summary (the benchmark measures the stage, not a model)."""

    def __init__(self) -> None:
        self.calls = 0

    async def fold(self, *args: Any, **kwargs: Any) -> Folded:
        self.calls += 1
        return Folded("The user asked about many topics; each was fine.", 0)


async def run(calls: int, turns: int, directory: Path) -> None:
    config = ModelConfig(
        name="gpt-4o", provider="openai", base_url="http://127.0.0.1:9", context_window=WINDOW
    )
    catalog = ModelCatalog.from_configs([config], ProviderRegistry())
    routes = RouteTable({}, catalog.names())
    estimator = UsageEstimator(TokenizerService(), catalog, AccountingConfig(), routes)
    database = Database(f"sqlite:///{directory}/bench.db")
    await database.start()
    repository = ContextRepository(database)
    summarizer = StubSummarizer()
    compactor = Compactor(
        repository,
        summarizer,  # type: ignore[arg-type]
        Recall(repository),
        lambda model: WINDOW,
    )
    stage = ContextStage(ContextPolicy.from_models([config]), estimator, compactor)
    cases = {
        "fits (count only)": (10, "truncate", False),
        "truncate": (turns, "truncate", False),
        "middle-out": (turns, "middle-out", False),
        # every call a history never seen: no message cost is remembered
        "truncate, cold": (turns, "truncate", True),
        # the summary stored by the first call is found by its prefix's hash
        "summarize, stored": (turns, "summarize", False),
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
    print(f"  (summarizer calls: {summarizer.calls})")
    await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(args.calls, args.turns, Path(directory)))


if __name__ == "__main__":
    main()
