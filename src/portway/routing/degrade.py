"""Graceful degradation: what to answer when no deployment can.

Contract: ``StaleAnswerSource`` is the hook a cache stage implements to offer an
expired answer for a call (None when it has none). ``static_completion`` builds a
normal ``chat.completion`` carrying a configured message; ``completion_chunks`` turns
any completion into the stream chunks a streaming client expects.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Protocol

from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict

if TYPE_CHECKING:
    from portway.pipeline.base import CallContext

DEGRADED_HEADER = "x-portway-degraded"


class StaleAnswerSource(Protocol):
    async def stale_answer(self, ctx: CallContext) -> ChatCompletionDict | None:
        """An earlier answer to this call, however old, or None."""
        ...


def static_completion(model: str, message: str) -> ChatCompletionDict:
    return {
        "id": "chatcmpl-degraded-" + secrets.token_hex(8),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": message, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def completion_chunks(completion: ChatCompletionDict) -> list[ChatCompletionChunkDict]:
    """The completion as a role chunk, content chunks and finish chunks, then usage."""
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
    }
    if completion.get("system_fingerprint"):
        base["system_fingerprint"] = completion["system_fingerprint"]
    chunks: list[ChatCompletionChunkDict] = []
    for choice in completion["choices"]:
        message = choice["message"]
        index = choice["index"]
        deltas: list[dict] = [{"role": "assistant", "content": ""}]
        if message.get("content"):
            deltas.append({"content": message["content"]})
        for position, call in enumerate(message.get("tool_calls") or ()):
            deltas.append({"tool_calls": [{"index": position, **call}]})
        for delta in deltas:
            chunks.append(
                {**base, "choices": [{"index": index, "delta": delta, "finish_reason": None}]}  # type: ignore[typeddict-item]
            )
        chunks.append(
            {  # type: ignore[typeddict-item]
                **base,
                "choices": [
                    {"index": index, "delta": {}, "finish_reason": choice["finish_reason"]}
                ],
            }
        )
    if "usage" in completion:
        chunks.append({**base, "choices": [], "usage": completion["usage"]})  # type: ignore[typeddict-item]
    return chunks
