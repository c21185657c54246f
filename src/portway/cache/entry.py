"""The canonical cached completion and how it becomes a fresh response again.

Contract: a ``CachedCompletion`` holds what makes an answer (each choice's message,
finish reason and logprobs, the usage the model reported, the system fingerprint),
never per-response identity. ``to_completion`` renders a new ``chat.completion`` with a
fresh ``id`` and ``created``, usage as originally reported plus
``prompt_tokens_details.cached_tokens`` equal to the prompt tokens (the whole prompt
was served from the cache). Entries are stored as JSON bytes, so every hit decodes
fresh objects that later stages may change freely. An entry written for the semantic
cache also keeps its prompt's ``PromptFeatures``; an entry without them (older, or
written with the semantic cache off) serves exact hits only.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from portway.cache.semantic.guard import PromptFeatures
from portway.protocol.chat import ChatCompletionDict, UsageDict

FORMAT_VERSION = 1


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")


@dataclass(frozen=True, slots=True)
class CachedCompletion:
    choices: list[dict[str, Any]]  # {"index", "message", "finish_reason", "logprobs"}
    usage: dict[str, Any] | None
    system_fingerprint: str | None
    created_at: float
    expires_at: float
    features: PromptFeatures | None = None

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def cached_usage(self) -> UsageDict | None:
        """The usage as first reported, noting that the whole prompt came from the cache."""
        if self.usage is None:
            return None
        usage: dict[str, Any] = dict(self.usage)
        details = dict(usage.get("prompt_tokens_details") or {})
        details["cached_tokens"] = int(usage.get("prompt_tokens") or 0)
        usage["prompt_tokens_details"] = details
        return usage  # type: ignore[return-value]

    def to_completion(self, model: str) -> ChatCompletionDict:
        completion: dict[str, Any] = {
            "id": new_completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": self.choices,
        }
        usage = self.cached_usage()
        if usage is not None:
            completion["usage"] = usage
        if self.system_fingerprint is not None:
            completion["system_fingerprint"] = self.system_fingerprint
        return completion  # type: ignore[return-value]

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "choices": self.choices,
            "usage": self.usage,
            "system_fingerprint": self.system_fingerprint,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }
        if self.features is not None:
            data["features"] = self.features.to_json()
        return orjson.dumps(data)

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedCompletion | None:
        """Decode a stored entry; None for an entry written in another format version."""
        raw = orjson.loads(data)
        if raw.get("v") != FORMAT_VERSION:
            return None
        return cls(
            choices=raw["choices"],
            usage=raw["usage"],
            system_fingerprint=raw["system_fingerprint"],
            created_at=raw["created_at"],
            expires_at=raw["expires_at"],
            features=PromptFeatures.from_json(raw.get("features")),
        )


def from_completion(
    completion: ChatCompletionDict, *, now: float, ttl: float
) -> CachedCompletion | None:
    """The cacheable part of a completion; None when it has no complete choice."""
    choices = []
    for choice in completion.get("choices") or []:
        if not choice.get("finish_reason"):
            return None
        choices.append(
            {
                "index": choice["index"],
                "message": choice["message"],
                "logprobs": choice.get("logprobs"),
                "finish_reason": choice["finish_reason"],
            }
        )
    if not choices:
        return None
    usage = completion.get("usage")
    return CachedCompletion(
        choices=choices,
        usage=dict(usage) if usage else None,
        system_fingerprint=completion.get("system_fingerprint"),
        created_at=now,
        expires_at=now + ttl,
    )
