"""Legacy text completions served by a chat-only provider (e.g. Anthropic).

The mapping: each prompt string becomes one chat call whose only message is a user
message holding the prompt; ``max_tokens``, ``temperature``, ``top_p``, ``n``, ``stop``,
``presence_penalty``, ``frequency_penalty``, ``seed``, ``logit_bias`` and ``user`` carry
over unchanged. Each answer's text becomes a choice's ``text`` (choices numbered prompt
by prompt, ``index = prompt * n + j``); a ``finish_reason`` other than ``stop``,
``length`` or ``content_filter`` reads ``stop``; usage is the sum over the calls. What a
chat call cannot honour is refused with 400 naming the parameter: ``echo``, ``logprobs``,
``suffix``, ``best_of`` above ``n``, token-id prompts, ``max_tokens: 0``. (The router
refuses them first, from the deployment's capabilities; this is the provider's edge.)
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from portway.errors import InvalidRequestError
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict, ChatCompletionRequest
from portway.protocol.completions import CompletionChoiceDict, CompletionDict, CompletionRequest

ChatCall = Callable[[ChatCompletionRequest], Awaitable[ChatCompletionDict]]
ChatStream = Callable[[ChatCompletionRequest], AsyncIterator[ChatCompletionChunkDict]]

FINISH_REASONS = frozenset({"stop", "length", "content_filter"})
# Sampling parameters a chat call takes unchanged.
_CARRIED = (
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "logit_bias",
    "user",
)


def unmappable_param(request: CompletionRequest) -> str | None:
    """The first parameter a chat call cannot honour, if any."""
    if request.echo:
        return "echo"
    if request.logprobs is not None:
        return "logprobs"
    if request.suffix:
        return "suffix"
    if (request.best_of or 1) > request.choices_per_prompt:
        return "best_of"
    if request.texts() is None:
        return "prompt"
    if request.max_tokens == 0:
        return "max_tokens"
    return None


def refuse_unmappable(request: CompletionRequest, model: str) -> None:
    param = unmappable_param(request)
    if param is None:
        return
    what = "token-id prompts" if param == "prompt" else f"`{param}`"
    if param == "max_tokens":
        what = "`max_tokens: 0`"
    raise InvalidRequestError(
        f"The model `{model}` serves text completions through chat, which cannot honour {what}.",
        param=param,
        code="unsupported_parameter",
    )


def chat_request(request: CompletionRequest, prompt: str) -> ChatCompletionRequest:
    """One prompt as a chat call: a single user message, the sampling parameters as sent."""
    fields: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": request.max_tokens,
    }
    for name in _CARRIED:
        value = getattr(request, name)
        if value is not None:
            fields[name] = value
    return ChatCompletionRequest.model_validate(fields)


def finish_reason(reason: str | None) -> Any:
    if reason is None:
        return None
    return reason if reason in FINISH_REASONS else "stop"


def text_completion(
    completion_id: str, created: int, model: str, choices: list[CompletionChoiceDict]
) -> CompletionDict:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": choices,
    }


def _add_usage(total: dict[str, int], usage: Any) -> None:
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        total[key] = total.get(key, 0) + int(usage.get(key) or 0)


async def complete_via_chat(
    chat: ChatCall, request: CompletionRequest, model: str
) -> CompletionDict:
    refuse_unmappable(request, model)
    prompts = request.texts() or []
    per_prompt = request.choices_per_prompt
    choices: list[CompletionChoiceDict] = []
    usage: dict[str, int] = {}
    for number, prompt in enumerate(prompts):
        answer = await chat(chat_request(request, prompt))
        for choice in answer.get("choices") or ():
            message: Any = choice.get("message") or {}
            choices.append(
                {
                    "text": message.get("content") or "",
                    "index": number * per_prompt + int(choice.get("index") or 0),
                    "logprobs": None,
                    "finish_reason": finish_reason(choice.get("finish_reason")) or "stop",
                }
            )
        if answer.get("usage"):
            _add_usage(usage, answer["usage"])
    result = text_completion("cmpl-" + secrets.token_hex(12), int(time.time()), model, choices)
    if usage:
        result["usage"] = usage  # type: ignore[typeddict-item]
    return result


async def stream_via_chat(
    stream: ChatStream, request: CompletionRequest, model: str
) -> AsyncIterator[CompletionDict]:
    """Chat chunks as ``text_completion`` chunks, prompt after prompt; one usage chunk last."""
    refuse_unmappable(request, model)
    completion_id = "cmpl-" + secrets.token_hex(12)
    created = int(time.time())
    per_prompt = request.choices_per_prompt
    usage: dict[str, int] = {}
    for number, prompt in enumerate(request.texts() or []):
        async for chunk in stream(chat_request(request, prompt)):
            if chunk.get("usage"):
                _add_usage(usage, chunk["usage"])
            for choice in chunk.get("choices") or ():
                delta: Any = choice.get("delta") or {}
                text = delta.get("content") or ""
                finish = finish_reason(choice.get("finish_reason"))
                if not text and finish is None:
                    continue  # the role-only opening delta has nothing for a text client
                index = number * per_prompt + int(choice.get("index") or 0)
                yield text_completion(
                    completion_id,
                    created,
                    model,
                    [{"text": text, "index": index, "logprobs": None, "finish_reason": finish}],
                )
    if usage:
        last = text_completion(completion_id, created, model, [])
        last["usage"] = usage  # type: ignore[typeddict-item]
        yield last
