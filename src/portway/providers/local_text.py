"""Legacy text completions on the local model: the raw prompt, no chat template.

Contract: each prompt (text, tokenized with the GGUF's vocabulary and its special tokens,
or token ids of that vocabulary as sent) is continued ``n`` times by the batch engine chat
uses (``LocalProvider.run_jobs``: exact usage, stop sequences, ``max_tokens``, sampling,
``seed``, ``logit_bias``), every generation of a call side by side. ``echo`` puts the
prompt before the generated text; ``max_tokens: 0`` generates nothing (with ``echo``: the
prompt back).
``logprobs``, ``suffix`` and ``best_of`` above ``n`` are refused (400): the loop keeps
no token probabilities and the model has no fill-in-the-middle. Each choice of each
prompt is a generation: prompts times ``n`` is capped by the ``max_n`` option, as chat's
``n`` is. A stream serves one prompt with ``n: 1``; closing it (or cancelling a whole
call) stops generation at the next token.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portway.errors import ContextLengthExceededError, InvalidRequestError
from portway.protocol.completions import CompletionChoiceDict, CompletionDict, CompletionRequest
from portway.providers.text_via_chat import finish_reason, text_completion

if TYPE_CHECKING:
    from portway.providers.local import LocalProvider


@dataclass(frozen=True, slots=True)
class RawPrompt:
    """One prompt as the model reads it, and as ``echo`` gives it back."""

    tokens: list[int]
    text: str


def _refuse(request: CompletionRequest, model: str) -> None:
    if request.logprobs is not None:
        raise InvalidRequestError(
            f"The model `{model}` does not support logprobs.", param="logprobs"
        )
    if request.suffix:
        raise InvalidRequestError(f"The model `{model}` does not support `suffix`.", param="suffix")
    if (request.best_of or 1) > request.choices_per_prompt:
        raise InvalidRequestError(
            f"The model `{model}` cannot rank completions (no logprobs): `best_of` must equal `n`.",
            param="best_of",
        )


def _check_generations(provider: LocalProvider, request: CompletionRequest) -> None:
    """Refuse more generations (prompts times ``n``) than the model's ``max_n`` allows."""
    wanted = request.prompt_count * request.choices_per_prompt
    allowed = provider.max_generations
    if wanted > allowed:
        raise InvalidRequestError(
            f"The request asks for {wanted} completions ({request.prompt_count} prompt(s) "
            f"times n={request.choices_per_prompt}); the model `{provider.config.name}` "
            f"generates at most {allowed} per request.",
            param="n" if request.choices_per_prompt > 1 else "prompt",
        )


def raw_prompts(provider: LocalProvider, request: CompletionRequest) -> list[RawPrompt]:
    """The request's prompts in the model's vocabulary; 400 for ids it does not have."""
    llama = provider.loaded_model()
    vocabulary = llama.n_vocab()
    for token in request.logit_bias or {}:
        if int(token) >= vocabulary:
            raise InvalidRequestError(
                f"logit_bias names token {token}, but the model `{provider.config.name}` has "
                f"{vocabulary} tokens.",
                param="logit_bias",
            )
    texts = request.texts()
    if texts is not None:
        prompts = [
            RawPrompt(llama.tokenize(text.encode("utf-8"), add_bos=True, special=True), text)
            for text in texts
        ]
    else:
        prompts = []
        for ids in request.token_prompts():
            if any(token < 0 or token >= vocabulary for token in ids):
                raise InvalidRequestError(
                    f"The prompt holds token ids outside the vocabulary of the model "
                    f"`{provider.config.name}` (0..{vocabulary - 1}).",
                    param="prompt",
                )
            text = bytes(llama.detokenize(ids, special=True)).decode("utf-8", "replace")
            prompts.append(RawPrompt(ids, text))
    if any(not prompt.tokens for prompt in prompts):
        raise InvalidRequestError("The prompt is empty.", param="prompt")
    return prompts


def output_room(provider: LocalProvider, request: CompletionRequest, prompt: RawPrompt) -> int:
    """How many tokens to generate after ``prompt``: the cap, if the context has room."""
    context = provider.context_window
    room = context - len(prompt.tokens)
    wanted = request.max_output_tokens
    if wanted is not None and request.output_cap_is_default:
        wanted = min(wanted, room)  # Portway's default cap, not the client's: fit it
    if room <= 0 or (wanted is not None and wanted > room):
        raise ContextLengthExceededError(
            f"This model's maximum context length is {context} tokens. However, you "
            f"requested {len(prompt.tokens) + (wanted or 0)} tokens ({len(prompt.tokens)} in "
            f"the prompt, {wanted or 0} in the completion).",
            param="prompt",
        )
    return min(provider.output_cap, room) if wanted is None else wanted


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


async def complete_raw(provider: LocalProvider, request: CompletionRequest) -> CompletionDict:
    model = provider.config.name
    _refuse(request, model)
    _check_generations(provider, request)
    prompts = raw_prompts(provider, request)
    rooms = [output_room(provider, request, prompt) for prompt in prompts]
    wanted = [(prompt, room) for prompt, room in zip(prompts, rooms, strict=True) if room > 0]
    jobs = [
        provider.raw_job(prompt.tokens, room, request)
        for prompt, room in wanted
        for _ in range(request.choices_per_prompt)
    ]
    generations = iter(await provider.run_jobs(jobs))
    choices: list[CompletionChoiceDict] = []
    prompt_tokens = completion_tokens = 0
    for number, (prompt, room) in enumerate(zip(prompts, rooms, strict=True)):
        prompt_tokens += len(prompt.tokens)
        for j in range(request.choices_per_prompt):
            text, reason = "", "length"
            if room > 0:
                generation = next(generations)
                text, reason = generation.text, generation.finish_reason
                completion_tokens += generation.completion_tokens
            choices.append(
                {
                    "text": (prompt.text if request.echo else "") + text,
                    "index": number * request.choices_per_prompt + j,
                    "logprobs": None,
                    "finish_reason": finish_reason(reason),
                }
            )
    result = text_completion("cmpl-" + secrets.token_hex(12), int(time.time()), model, choices)
    result["usage"] = _usage(prompt_tokens, completion_tokens)  # type: ignore[typeddict-item]
    return result


async def stream_raw(
    provider: LocalProvider, request: CompletionRequest
) -> AsyncIterator[CompletionDict]:
    model = provider.config.name
    _refuse(request, model)
    if request.choices_per_prompt > 1:
        raise InvalidRequestError(
            "The local provider streams one choice at a time; use n=1 with stream.", param="n"
        )
    prompts = raw_prompts(provider, request)
    if len(prompts) > 1:
        raise InvalidRequestError(
            "The local provider streams one prompt at a time; send one prompt with stream.",
            param="prompt",
        )
    prompt = prompts[0]
    room = output_room(provider, request, prompt)
    completion_id = "cmpl-" + secrets.token_hex(12)
    created = int(time.time())

    def chunk(text: str, finish: Any = None) -> CompletionDict:
        choice: CompletionChoiceDict = {
            "text": text,
            "index": 0,
            "logprobs": None,
            "finish_reason": finish,
        }
        return text_completion(completion_id, created, model, [choice])

    yield chunk(prompt.text if request.echo else "")
    if room == 0:
        yield chunk("", "length")
        last = text_completion(completion_id, created, model, [])
        last["usage"] = _usage(len(prompt.tokens), 0)  # type: ignore[typeddict-item]
        yield last
        return
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[str | None] = asyncio.Queue()

    def emit(text: str) -> None:
        loop.call_soon_threadsafe(pieces.put_nowait, text)

    job = provider.raw_job(prompt.tokens, room, request, emit)
    task = asyncio.ensure_future(provider.run_job(job))
    task.add_done_callback(lambda _: pieces.put_nowait(None))
    try:
        while (piece := await pieces.get()) is not None:
            yield chunk(piece)
        generation = await task
        yield chunk("", finish_reason(generation.finish_reason))
        last = text_completion(completion_id, created, model, [])
        last["usage"] = _usage(  # type: ignore[typeddict-item]
            generation.prompt_tokens, generation.completion_tokens
        )
        yield last
    finally:
        if not task.done():
            job.cancel.set()  # the engine drops the sequence at the next token
            task.cancel()
            await asyncio.wait([task])
