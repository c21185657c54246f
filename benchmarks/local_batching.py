"""Does batched decoding pay off on the local model, and what does it cost one request?

Two measurements on the shipped SmolLM2-135M (Q4_1 GGUF; ``--model`` serves another),
in-process (the provider and its batch engine; no HTTP, which adds ~1 ms to calls of
seconds):

1. Eight short chats sent at once (greedy, ``--chat-tokens`` each) to a local model
   with ``parallel: 8`` (one batch) and with ``parallel: 1`` (one generation at a time,
   in arrival order: how the provider served them before batching), each with the prefix
   cache off and on. Medians of ``--rounds`` alternating rounds: wall time, output tokens
   per second, prompt tokens reused, speed-up over one at a time without the cache, and
   whether the answers are the same every way.
2. One request's decode speed (tokens per second after the first token, greedy, the end
   of generation suppressed so both run ``--decode-tokens``) on the batch engine against
   raw ``llama-cpp-python`` (``Llama.generate``) on the same weights, prompt tokens and
   threads, alternated ``--repeats`` times; medians.

    PYTHONPATH=src python benchmarks/local_batching.py [--threads 2] [--rounds 3]
        [--repeats 5] [--model GGUF]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from llama_cpp import Llama, LogitsProcessorList

from portway.config import ModelConfig
from portway.protocol.chat import ChatCompletionRequest
from portway.providers.local import LocalProvider, default_model_path
from portway.providers.local_engine import GenerationJob, Sampling

CHATS = [
    "Say one.",
    "Name a colour.",
    "What is 2+2?",
    "Write a haiku about rain.",
    "Who wrote Hamlet?",
    "List three fruits.",
    "Describe the sun.",
    "Greet me in French.",
]
DECODE_PROMPT = "Write a long story about a dragon who learns to bake bread."
EOS = 2  # SmolLM2's <|im_end|>


async def provider(
    parallel: int, threads: int, path: str | None = None, prefix_cache: bool = True
) -> LocalProvider:
    config = ModelConfig.model_validate(
        {
            "name": "smollm2-135m",
            "provider": "local",
            **({"path": path} if path else {}),
            "options": {"parallel": parallel, "n_threads": threads, "prefix_cache": prefix_cache},
        }
    )
    local = LocalProvider(config)
    await local.start()
    return local


def chat(prompt: str, max_tokens: int) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {
            "model": "smollm2-135m",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
    )


async def eight_chats(
    parallel: int, threads: int, max_tokens: int, path: str | None, prefix_cache: bool
) -> tuple[float, int, list, int]:
    local = await provider(parallel, threads, path, prefix_cache)
    try:
        await local.chat(chat("Hi", 2))  # warm-up
        started = time.perf_counter()
        answers = await asyncio.gather(*(local.chat(chat(p, max_tokens)) for p in CHATS))
        elapsed = time.perf_counter() - started
    finally:
        await local.close()
    tokens = sum(answer["usage"]["completion_tokens"] for answer in answers)
    texts = [answer["choices"][0]["message"]["content"] for answer in answers]
    cached = sum(answer["usage"]["prompt_tokens_details"]["cached_tokens"] for answer in answers)
    return elapsed, tokens, texts, cached


def decode_rate(stamps: list[float]) -> float:
    """Tokens per second after the first token."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def engine_decode(local: LocalProvider, prompt: list[int], tokens: int) -> float:
    stamps: list[float] = []
    engine = local.engine
    assert engine is not None
    job = GenerationJob(
        prompt=prompt,
        max_tokens=tokens,
        sampling=Sampling(temperature=0, logit_bias={EOS: -100.0}),
        emit=lambda _text: stamps.append(time.perf_counter()),
    )
    generation = engine.submit(job).result()
    assert generation.completion_tokens == tokens
    return decode_rate(stamps)


def raw_decode(llama: Llama, prompt: list[int], tokens: int) -> float:
    stamps: list[float] = []

    def no_eos(_ids: Any, logits: Any) -> Any:
        logits[EOS] = -100.0
        return logits

    for _token in llama.generate(
        prompt,
        temp=0,
        top_p=1.0,
        reset=True,
        logits_processor=LogitsProcessorList([no_eos]),
    ):
        stamps.append(time.perf_counter())
        if len(stamps) == tokens:
            break
    return decode_rate(stamps)


async def single_request(
    threads: int, tokens: int, repeats: int, path: str | None
) -> tuple[float, float]:
    local = await provider(8, threads, path)
    raw = Llama(
        model_path=path or str(default_model_path()), n_ctx=4096, n_threads=threads, verbose=False
    )
    try:
        request = chat(DECODE_PROMPT, tokens)
        prompt = local._prepare(request).prompt_tokens
        engine_rates, raw_rates = [], []
        for _ in range(repeats):
            engine_rates.append(await asyncio.to_thread(engine_decode, local, prompt, tokens))
            raw_rates.append(raw_decode(raw, prompt, tokens))
    finally:
        await local.close()
    return statistics.median(engine_rates), statistics.median(raw_rates)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chat-tokens", type=int, default=32)
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--model",
        help="another GGUF of the same model (default: the shipped)",
    )
    args = parser.parse_args()

    print(
        f"8 concurrent chats, greedy, max_tokens {args.chat_tokens}, {args.threads} thread(s),"
        f" median of {args.rounds} alternating rounds"
    )
    runs: dict[tuple[str, str], list[tuple[float, int, list, int]]] = {}
    for _round in range(args.rounds):
        for prefix_cache in (False, True):
            label = "prefix cache " + ("on" if prefix_cache else "off")
            for parallel, mode in ((8, "batched"), (1, "sequential")):
                run = await eight_chats(
                    parallel, args.threads, args.chat_tokens, args.model, prefix_cache
                )
                runs.setdefault((label, mode), []).append(run)
    medians = {key: statistics.median(run[0] for run in taken) for key, taken in runs.items()}
    baseline = medians["prefix cache off", "sequential"]
    for (label, mode), taken in runs.items():
        elapsed, (_e, tokens, _texts, cached) = medians[label, mode], taken[0]
        print(
            f"  {label}, {mode:<10} {elapsed:6.2f} s  {tokens} tokens"
            f"  {tokens / elapsed:6.1f} tokens/s  {cached:3} prompt tokens reused"
            f"  x{baseline / elapsed:.2f}"
        )
    reference = runs["prefix cache off", "sequential"][0][2]
    same = all(run[2] == reference for taken in runs.values() for run in taken)
    print(f"  same answers every way: {same}")

    engine_rate, raw_rate = await single_request(
        args.threads, args.decode_tokens, args.repeats, args.model
    )
    print(f"one request, {args.decode_tokens} tokens decoded, median of {args.repeats}")
    print(f"  batch engine      {engine_rate:6.1f} tokens/s")
    print(f"  llama-cpp-python  {raw_rate:6.1f} tokens/s")
    print(f"  engine / raw      {engine_rate / raw_rate:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
