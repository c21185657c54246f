"""Added latency of auth + key limits + budget reservation + usage ledger per chat call.

Runs the real pipeline in-process (no HTTP, so the numbers are not drowned in socket
noise) with an instant stub in place of the router/provider:

- baseline: master-key auth + the stub
- keys+limits+ledger: a virtual key (rpm/tpm) + usage recorder + key limits + the stub
- full: the same key with a budget (reservation transaction before the call)

each with the ledger in ``journal`` (default), ``commit`` and ``batch`` durability, on
SQLite (or ``--database-url postgresql://...``). Prints p50/p99 per call, sequentially
and at concurrency 32.

    PYTHONPATH=src python benchmarks/accounting_overhead.py [--calls 3000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

from portway.accounting.estimate import UsageEstimator
from portway.accounting.services import Accounting
from portway.accounting.tokenizer import TokenizerService
from portway.config import AccountingConfig, Settings
from portway.keys.service import BudgetSpec
from portway.pipeline.base import CallContext, CompleteHandler, Terminal
from portway.pipeline.service import Pipeline
from portway.protocol.chat import ChatCompletionDict, ChatCompletionRequest
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.routes import RouteTable
from portway.security.auth import Authenticator, KeyAuthenticator, MasterKeyAuthenticator
from portway.store import Database
from portway.store.keys import KeyFields

MASTER = "sk-bench-master"
BODY = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Summarise the plot of Hamlet in two sentences, please."},
    ],
    "max_tokens": 64,
}


class InstantModel(Terminal):
    """Stands in for router + provider: answers at once with usage."""

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ChatCompletionDict:
        ctx.deployment = "gpt-4o-mini"
        ctx.attempts = 1
        ctx.usage = {"prompt_tokens": 30, "completion_tokens": 40, "total_tokens": 70}
        return {  # type: ignore[typeddict-item]
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": ctx.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok", "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": ctx.usage,
        }


Call = Callable[[int], Awaitable[None]]


def make_call(authenticator: Authenticator, chat: Pipeline, token: str) -> Call:
    request = ChatCompletionRequest.model_validate(BODY)

    async def call(index: int) -> None:
        principal = await authenticator.authenticate(token)
        ctx = CallContext(request_id=f"req-{index}", principal=principal, request=request)
        await chat.complete(ctx)

    return call


async def measure(call: Call, calls: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    counter = iter(range(calls))

    async def worker() -> None:
        for index in counter:
            start = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - start)
            # A server reads each request from a socket: the loop runs between calls. A
            # worker whose calls never suspend would otherwise starve the waiting ones.
            await asyncio.sleep(0)

    for index in range(200):  # warm-up: BPE loaded, caches filled, pool open
        await call(-index - 1)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def summary(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered) * 1e6, p99 * 1e6


async def variant(
    durability: str, with_budget: bool, calls: int, concurrency: int, database_url: str | None
) -> list[float]:
    directory = tempfile.mkdtemp(prefix="portway-bench-")
    settings = Settings.model_validate(
        {
            "master_key": MASTER,
            "database_url": database_url or f"sqlite:///{directory}/bench.db",
            "ledger": {"durability": durability, "journal_dir": f"{directory}/journal"},
            "models": [
                {
                    "name": "gpt-4o-mini",
                    "provider": "openai",
                    "base_url": "http://127.0.0.1:9/v1",
                    "api_key": "unused",
                }
            ],
        }
    )
    catalog = ModelCatalog.from_configs(settings.models, ProviderRegistry())
    database = Database(settings.database_url)
    accounting = Accounting.build(settings, catalog, database)
    routes = RouteTable(settings.router, catalog.names())
    estimator = UsageEstimator(accounting.tokenizer, catalog, settings.accounting, routes)
    stages = accounting.stages(estimator)
    await database.start()
    await accounting.start(catalog)
    try:
        budget = BudgetSpec(10**15, "monthly") if with_budget else None
        _record, secret = await accounting.keys.create(
            KeyFields(rpm=10**9, tpm=2 * 10**9, user_id="bench", team_id="bench"), budget
        )
        chat = Pipeline.of([*stages, InstantModel()], estimator.count_prompt)
        call = make_call(KeyAuthenticator(MASTER, accounting.keys), chat, secret)
        return await measure(call, calls, concurrency)
    finally:
        await accounting.close()
        await database.close()


async def baseline(calls: int, concurrency: int) -> list[float]:
    # Nothing in it counts prompts: the counter is never asked.
    catalog = ModelCatalog.from_configs([], ProviderRegistry())
    routes = RouteTable({}, catalog.names())
    estimator = UsageEstimator(TokenizerService(), catalog, AccountingConfig(), routes)
    chat = Pipeline.of([InstantModel()], estimator.count_prompt)
    return await measure(
        make_call(MasterKeyAuthenticator(MASTER), chat, MASTER), calls, concurrency
    )


async def main(calls: int, database_url: str | None) -> None:
    rows: list[tuple[str, int, float, float]] = []
    for concurrency in (1, 32):
        base = summary(await baseline(calls, concurrency))
        rows.append(("baseline (master key, no accounting)", concurrency, *base))
        for durability in ("journal", "commit", "batch"):
            for with_budget in (False, True):
                name = f"keys+limits+ledger[{durability}]" + (" +budget" if with_budget else "")
                latencies = await variant(durability, with_budget, calls, concurrency, database_url)
                p50, p99 = summary(latencies)
                rows.append((name, concurrency, p50, p99))
    print(f"{'variant':<44} {'conc':>4} {'p50 µs':>9} {'p99 µs':>9} {'+p50 µs':>9}")
    baselines = {conc: p50 for name, conc, p50, _ in rows if name.startswith("baseline")}
    for name, concurrency, p50, p99 in rows:
        added = p50 - baselines[concurrency]
        print(f"{name:<44} {concurrency:>4} {p50:>9.1f} {p99:>9.1f} {added:>9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.database_url))
