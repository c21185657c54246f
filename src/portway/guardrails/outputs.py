"""Output guardrails: pseudonyms restored and answers checked, whole and streamed.

Streams: pseudonyms go through ``StreamRestorer`` (holds back only a possible split
placeholder). Other output checks scan each text with the last ``WINDOW`` characters
already seen, so a value split across chunks is still found: ``block`` ends the stream
with an error event, ``monitor`` counts; ``redact`` holds back what the guardrail says may
still become a finding (``Guardrail.stream_hold``: the last word for secrets, an open link
for sanitize, at most ``WINDOW`` characters) so a value is replaced before any is sent.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from portway.guardrails.base import STREAM_WINDOW, GuardSession
from portway.guardrails.policy import ActivePolicy
from portway.guardrails.restore import StreamRestorer
from portway.protocol.chat import ChatCompletionDict
from portway.protocol.completions import CompletionDict

WINDOW = STREAM_WINDOW


def _checks(policies: Sequence[ActivePolicy]) -> tuple[ActivePolicy, ...]:
    """The output checks other than restoring pseudonyms (which always happens)."""
    return tuple(
        policy
        for policy in policies
        if policy.on_output and not (policy.guardrail.reversible and policy.mode == "redact")
    )


def check_output_text(text: str, policies: Sequence[ActivePolicy], session: GuardSession) -> str:
    text = session.restore(text)
    for policy in _checks(policies):
        text = policy.guardrail.check_output(text, policy.mode, session)
    return text


def guard_result(
    result: ChatCompletionDict | CompletionDict,
    policies: Sequence[ActivePolicy],
    session: GuardSession,
) -> ChatCompletionDict | CompletionDict:
    """A copy of ``result`` with its texts restored and checked (the cache keeps its own)."""
    if not session.reversible and not _checks(policies):
        return result
    choices: list[Any] = []
    for choice in result["choices"]:
        if "message" not in choice:  # a legacy completion's choice
            text = check_output_text(choice["text"], policies, session)  # type: ignore[typeddict-item]
            choices.append({**choice, "text": text})
            continue
        message: dict[str, Any] = dict(choice["message"])  # type: ignore[typeddict-item]
        if isinstance(message.get("content"), str):
            message["content"] = check_output_text(message["content"], policies, session)
        if message.get("tool_calls"):
            message["tool_calls"] = [
                {
                    **call,
                    "function": {
                        **call["function"],
                        "arguments": check_output_text(
                            call["function"]["arguments"], policies, session
                        ),
                    },
                }
                for call in message["tool_calls"]
            ]
        choices.append({**choice, "message": message})
    return {**result, "choices": choices}  # type: ignore[typeddict-item]


class _Scanner:
    """One output check over a stream of texts (per key)."""

    def __init__(self, policy: ActivePolicy, session: GuardSession) -> None:
        self._policy = policy
        self._session = session
        self._seen: dict[Hashable, str] = {}  # block/monitor: the last WINDOW characters sent
        self._held: dict[Hashable, str] = {}  # redact: text not sent yet
        self._sent: dict[Hashable, int] = {}  # characters passed on so far
        self._counted: dict[Hashable, int] = {}  # where the last counted finding ended

    def feed(self, key: Hashable, text: str) -> str:
        guardrail, mode = self._policy.guardrail, self._policy.mode
        if mode == "redact":
            pending = self._held.pop(key, "") + text
            cut = guardrail.stream_hold(pending)
            for finding in guardrail.detect_output(pending):
                if finding.start < cut < finding.end:
                    cut = finding.start
            self._held[key] = pending[cut:]
            return guardrail.check_output(pending[:cut], mode, self._session)
        seen = self._seen.get(key, "")
        window = seen + text
        # A value still growing across chunks is one finding: counted once, where it starts.
        start = self._sent.get(key, 0) - len(seen)  # the window's offset in the whole text
        counted = self._counted.get(key, 0)
        fresh = [
            finding
            for finding in guardrail.detect_output(window)
            if finding.end > len(seen) and start + finding.start >= counted
        ]
        if fresh:
            self._counted[key] = start + fresh[-1].end
            guardrail.check_output(window[fresh[0].start :], mode, self._session)
        self._sent[key] = self._sent.get(key, 0) + len(text)
        self._seen[key] = window[-WINDOW:]
        return text

    def flush(self, key: Hashable) -> str:
        held = self._held.pop(key, "")
        if not held:
            return ""
        return self._policy.guardrail.check_output(held, self._policy.mode, self._session)


class StreamGuard:
    """A stream's output guardrails, applied to each chunk's texts."""

    def __init__(self, policies: Sequence[ActivePolicy], session: GuardSession) -> None:
        self._restorer = StreamRestorer(session) if session.reversible else None
        self._scanners = [_Scanner(policy, session) for policy in _checks(policies)]
        self._keys: set[Hashable] = set()

    @property
    def active(self) -> bool:
        return self._restorer is not None or bool(self._scanners)

    def _feed(self, key: Hashable, text: str) -> str:
        self._keys.add(key)
        if self._restorer is not None:
            text = self._restorer.feed(key, text)
        for scanner in self._scanners:
            text = scanner.feed(key, text)
        return text

    def _flush(self, key: Hashable) -> str:
        self._keys.discard(key)
        text = self._restorer.flush(key) if self._restorer is not None else ""
        for scanner in self._scanners:
            text = scanner.feed(key, text) + scanner.flush(key) if text else scanner.flush(key)
        return text

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``chunk`` (chat or legacy completion) with its texts guarded; held
        tails are flushed at a choice's end."""
        choices = []
        for choice in chunk["choices"]:
            index = choice["index"]
            if "delta" not in choice:  # a legacy completion chunk: the text is the choice's
                text = choice.get("text") or ""
                held: dict[str, Any] = {"content": self._feed((index, "content"), text)}
                if choice.get("finish_reason") is not None:
                    self._finish(index, held)
                choices.append({**choice, "text": held.get("content") or ""})
                continue
            delta: dict[str, Any] = dict(choice["delta"])
            content = delta.get("content")
            if content:
                delta["content"] = self._feed((index, "content"), content)
            calls = []
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                arguments = function.get("arguments")
                if arguments:
                    key = (index, "tool", call.get("index", 0))
                    call = {
                        **call,
                        "function": {**function, "arguments": self._feed(key, arguments)},
                    }
                calls.append(call)
            if calls:
                delta["tool_calls"] = calls
            if choice.get("finish_reason") is not None:
                self._finish(index, delta)
            choices.append({**choice, "delta": delta})
        return {**chunk, "choices": choices}  # type: ignore[typeddict-item]

    def _finish(self, index: int, delta: dict[str, Any]) -> None:
        for key in sorted((key for key in self._keys if key[0] == index), key=str):  # type: ignore[index]
            tail = self._flush(key)
            if not tail:
                continue
            if key[1] == "content":  # type: ignore[index]
                delta["content"] = (delta.get("content") or "") + tail
            else:
                delta.setdefault("tool_calls", []).append(
                    {"index": key[2], "function": {"arguments": tail}}  # type: ignore[index]
                )

    def leftover(self, last: dict[str, Any]) -> dict[str, Any] | None:
        """A last chunk for tails never flushed (the stream ended without a finish reason)."""
        indexes = sorted({key[0] for key in self._keys})  # type: ignore[index]
        legacy = bool(last["choices"]) and "delta" not in last["choices"][0]
        choices: list[dict[str, Any]] = []
        for index in indexes:
            delta: dict[str, Any] = {}
            self._finish(index, delta)
            if not delta:
                continue
            if legacy:
                text = delta.get("content") or ""
                choices.append(
                    {"index": index, "text": text, "logprobs": None, "finish_reason": None}
                )
            else:
                choices.append({"index": index, "delta": delta, "finish_reason": None})
        if not choices:
            return None
        return {**last, "choices": choices, "usage": None}
