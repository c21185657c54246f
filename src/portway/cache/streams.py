"""Completions ↔ streams: replay a cached completion as chunks, assemble a stream into one.

Contract: ``replay_chunks`` yields what an OpenAI stream of the same answer looks like:
per choice a first delta with the role, the content (and refusal) delta, one
tool-call delta per call with its ``index``, id, name and arguments, a finish chunk;
then one usage chunk with empty ``choices``. ``StreamAssembler`` accumulates deltas the
way the OpenAI SDK does (strings concatenated, tool calls merged by ``index``) and
yields a ``CachedCompletion`` only when every choice finished.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from portway.cache.entry import CachedCompletion, new_completion_id
from portway.protocol.chat import ChatCompletionChunkDict


def replay_chunks(
    entry: CachedCompletion, model: str, *, include_usage: bool
) -> Iterator[ChatCompletionChunkDict]:
    completion_id = new_completion_id()
    created = int(time.time())
    extra: dict[str, Any] = {}
    if entry.system_fingerprint is not None:
        extra["system_fingerprint"] = entry.system_fingerprint
    if include_usage:
        extra["usage"] = None

    def chunk(index: int, delta: dict[str, Any], **fields: Any) -> ChatCompletionChunkDict:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
        choice.update(fields)
        return {  # type: ignore[return-value]
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
            **extra,
        }

    for choice in entry.choices:
        index = choice["index"]
        message = choice["message"]
        yield chunk(index, {"role": "assistant", "content": "", "refusal": None})
        if message.get("content"):
            yield chunk(index, {"content": message["content"]}, logprobs=choice.get("logprobs"))
        if message.get("refusal"):
            yield chunk(index, {"refusal": message["refusal"]})
        for position, call in enumerate(message.get("tool_calls") or []):
            delta = {
                "index": position,
                "id": call["id"],
                "type": call.get("type", "function"),
                "function": dict(call["function"]),
            }
            yield chunk(index, {"tool_calls": [delta]})
        yield chunk(index, {}, finish_reason=choice["finish_reason"])
    usage = entry.cached_usage()
    if usage is not None:
        final: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            **extra,
            "usage": usage,
        }
        yield final  # type: ignore[misc]


@dataclass(slots=True)
class _ToolCall:
    id: str = ""
    type: str = "function"
    name: str = ""
    arguments: str = ""


@dataclass(slots=True)
class _Choice:
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    content_logprobs: list[Any] | None = None
    refusal_logprobs: list[Any] | None = None
    finish_reason: str | None = None

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        if delta.get("content"):
            self.content.append(delta["content"])
        if delta.get("refusal"):
            self.refusal.append(delta["refusal"])
        for call in delta.get("tool_calls") or []:
            partial = self.tool_calls.setdefault(call.get("index", 0), _ToolCall())
            partial.id += call.get("id") or ""
            partial.type = call.get("type") or partial.type
            function = call.get("function") or {}
            partial.name += function.get("name") or ""
            partial.arguments += function.get("arguments") or ""
        logprobs = choice.get("logprobs")
        if logprobs:
            if logprobs.get("content") is not None:
                self.content_logprobs = [*(self.content_logprobs or []), *logprobs["content"]]
            if logprobs.get("refusal") is not None:
                self.refusal_logprobs = [*(self.refusal_logprobs or []), *logprobs["refusal"]]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]

    def to_choice(self, index: int) -> dict[str, Any]:
        calls = [
            {
                "id": call.id,
                "type": call.type,
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for _, call in sorted(self.tool_calls.items())
        ]
        text = "".join(self.content)
        refusal = "".join(self.refusal) or None
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text or (None if calls or refusal else ""),
            "refusal": refusal,
        }
        if calls:
            message["tool_calls"] = calls
        logprobs = None
        if self.content_logprobs is not None or self.refusal_logprobs is not None:
            logprobs = {"content": self.content_logprobs, "refusal": self.refusal_logprobs}
        return {
            "index": index,
            "message": message,
            "logprobs": logprobs,
            "finish_reason": self.finish_reason,
        }


class StreamAssembler:
    """Collects a stream's chunks into the completion they spell out."""

    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self._usage: dict[str, Any] | None = None
        self._system_fingerprint: str | None = None

    def add(self, chunk: ChatCompletionChunkDict) -> None:
        if chunk.get("system_fingerprint"):
            self._system_fingerprint = chunk["system_fingerprint"]
        usage = chunk.get("usage")
        if usage:
            self._usage = dict(usage)
        for choice in chunk.get("choices") or []:
            self._choices.setdefault(choice["index"], _Choice()).add(choice)  # type: ignore[arg-type]

    def result(self, *, now: float, ttl: float) -> CachedCompletion | None:
        """The whole completion, or None when a choice never finished (cut-off stream)."""
        if not self._choices or any(c.finish_reason is None for c in self._choices.values()):
            return None
        return CachedCompletion(
            choices=[choice.to_choice(index) for index, choice in sorted(self._choices.items())],
            usage=self._usage,
            system_fingerprint=self._system_fingerprint,
            created_at=now,
            expires_at=now + ttl,
        )
