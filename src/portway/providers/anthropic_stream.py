"""Anthropic Messages stream events → ``chat.completion.chunk`` dicts.

Contract: a ``StreamTranslator`` serves one sent ``MessagesRequest``; ``feed`` takes
one decoded event at a time and returns the chunks it produces (often none): a first
chunk with the assistant role, text deltas, tool-call deltas with a 0-based ``index``
among the calls (id, given back in the client's form, and name on the first delta of
each call), a final chunk with the ``finish_reason``, then a usage chunk with empty
``choices``. ``finished`` turns true at ``message_stop``; an ``error`` event
raises ``UpstreamError``. The answer tool of an emulated ``response_format`` streams
as content; any text beside it is dropped, as in a whole completion.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from portway.errors import UpstreamError, UpstreamUnavailableError
from portway.protocol.chat import ChatCompletionChunkDict, DeltaDict
from portway.providers.anthropic_translate import MessagesRequest, finish_reason, to_usage


def stream_error(event: Mapping[str, Any]) -> UpstreamError:
    """The ``PortwayError`` for an ``error`` event inside a Messages stream."""
    error = event.get("error")
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "error")
    text = f"Upstream stream error ({kind}): {error.get('message') or 'no message'}"
    if kind == "overloaded_error":
        return UpstreamUnavailableError(text)
    return UpstreamError(text)


def _index(event: Mapping[str, Any]) -> int:
    index = event.get("index")
    if not isinstance(index, int):
        raise UpstreamError(f"The upstream sent a `{event.get('type')}` event without an index.")
    return index


@dataclass(slots=True)
class _OpenBlock:
    """What an Anthropic content block becomes in the chunk stream."""

    kind: Literal["text", "tool", "answer", "ignored"]
    tool_index: int = 0
    sent_arguments: bool = False


class StreamTranslator:
    """Messages stream events → ``chat.completion.chunk`` dicts, one event at a time."""

    def __init__(self, model: str, sent: MessagesRequest) -> None:
        self._id = "chatcmpl-"
        self._model = model
        self._created = int(time.time())
        self._answer_tool = sent.answer_tool
        self._tool_ids = sent.tool_ids
        self._blocks: dict[int, _OpenBlock] = {}
        self._tool_calls = 0
        self._usage: dict[str, int] = {}
        self._stop_reason: str | None = None
        # With an emulated response_format, text is held back: once the answer tool is
        # called it is dropped (as in non-streamed answers), else sent at the end.
        self._held_text: list[str] | None = [] if sent.answer_tool else None
        self.finished = False

    def feed(self, event: Mapping[str, Any]) -> list[ChatCompletionChunkDict]:
        """The chunks for one event (often none); raises ``UpstreamError`` for ``error``."""
        match event.get("type"):
            case "message_start":
                return self._message_start(event.get("message") or {})
            case "content_block_start":
                return self._block_start(_index(event), event.get("content_block") or {})
            case "content_block_delta":
                return self._block_delta(_index(event), event.get("delta") or {})
            case "content_block_stop":
                return self._block_stop(_index(event))
            case "message_delta":
                self._stop_reason = (event.get("delta") or {}).get("stop_reason")
                self._add_usage(event.get("usage"))
                return []
            case "message_stop":
                return self._message_stop()
            case "error":
                raise stream_error(event)
            case _:  # ping, and event types Anthropic may add later
                return []

    def _chunk(self, delta: DeltaDict, finish: str | None = None) -> ChatCompletionChunkDict:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _add_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            # message_delta counts are cumulative: the latest value wins.
            self._usage.update({k: v for k, v in usage.items() if isinstance(v, int)})

    def _message_start(self, message: Mapping[str, Any]) -> list[ChatCompletionChunkDict]:
        self._id = f"chatcmpl-{message.get('id') or ''}"
        self._model = str(message.get("model") or self._model)
        self._add_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[ChatCompletionChunkDict]:
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = _OpenBlock("text")
            return self._text(block.get("text"))
        if kind != "tool_use":
            self._blocks[index] = _OpenBlock("ignored")
            return []
        if block.get("name") == self._answer_tool:
            self._blocks[index] = _OpenBlock("answer")
            self._held_text = None
            return []
        self._blocks[index] = _OpenBlock("tool", self._tool_calls)
        self._tool_calls += 1
        call = {
            "index": self._blocks[index].tool_index,
            "id": self._tool_ids.to_client(str(block.get("id"))),
            "type": "function",
            "function": {"name": str(block.get("name")), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]  # type: ignore[list-item]

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[ChatCompletionChunkDict]:
        block = self._blocks.get(index)
        kind = delta.get("type")
        if block is None or block.kind == "ignored":
            return []
        if kind == "text_delta" and block.kind == "text":
            return self._text(delta.get("text"))
        if kind == "input_json_delta" and block.kind in ("tool", "answer"):
            partial = delta.get("partial_json")
            return [self._arguments(block, partial)] if partial else []
        return []

    def _text(self, text: Any) -> list[ChatCompletionChunkDict]:
        if not text:
            return []
        if self._answer_tool is not None:
            if self._held_text is not None:
                self._held_text.append(str(text))
            return []
        return [self._chunk({"content": str(text)})]

    def _arguments(self, block: _OpenBlock, text: str) -> ChatCompletionChunkDict:
        block.sent_arguments = True
        if block.kind == "answer":
            return self._chunk({"content": text})
        call = {"index": block.tool_index, "function": {"arguments": text}}
        return self._chunk({"tool_calls": [call]})  # type: ignore[list-item]

    def _block_stop(self, index: int) -> list[ChatCompletionChunkDict]:
        block = self._blocks.get(index)
        if block is not None and block.kind in ("tool", "answer") and not block.sent_arguments:
            # A call without arguments streams no JSON; clients still expect an object.
            return [self._arguments(block, "{}")]
        return []

    def _message_stop(self) -> list[ChatCompletionChunkDict]:
        self.finished = True
        reason = finish_reason(self._stop_reason, called_tools=self._tool_calls > 0)
        usage_chunk = self._chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = to_usage(self._usage)
        held = [self._chunk({"content": "".join(self._held_text)})] if self._held_text else []
        return [*held, self._chunk({}, reason), usage_chunk]
