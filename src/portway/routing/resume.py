"""Splicing a resumed stream into the one the client already reads.

Contract: a ``StreamSplice`` watches every chunk a streamed chat call sends to the client.
When the upstream breaks mid-stream, ``resumable`` says whether the call may continue on
another attempt: only text was sent (no tool-call delta yet, one choice, no finish), and
resumes are left. The next attempt asks to continue ``text`` as an assistant prefix; its
chunks are rewritten by ``rewrite`` to the first attempt's id, ``created`` and
fingerprint, without a second ``role`` delta and without the ``echo`` the provider sends
again, so the client reads one uninterrupted stream. ``usage`` sums every attempt's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portway.pipeline.base import ModelChunk

USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def add_usage(total: dict[str, Any], usage: Mapping[str, Any]) -> None:
    """Add one attempt's token counts to ``total`` (cached prompt tokens included)."""
    for key in USAGE_COUNTS:
        total[key] = int(total.get(key) or 0) + int(usage.get(key) or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    if cached:
        details = total.setdefault("prompt_tokens_details", {})
        details["cached_tokens"] = int(details.get("cached_tokens") or 0) + cached


@dataclass(slots=True)
class StreamSplice:
    """One client stream across the attempts that produce it."""

    choices: int = 1
    resumes_left: int = 0
    resumes: int = 0
    text: str = ""  # the assistant content the client has so far
    attempt_text: str = ""  # of it, what the current attempt produced
    tool_call_sent: bool = False
    finished: bool = False
    identity: dict[str, Any] = field(default_factory=dict)
    # Usage of the attempts before the current one (None: there were none).
    spent: dict[str, Any] | None = None
    echo: str = ""  # the tail the current attempt is expected to send again
    cut: dict[str, Any] | None = None  # the estimated usage of the attempt just cut

    def spans_attempts(self) -> bool:
        """Whether the ledger needs this attempt's usage apart: it was or may be resumed."""
        return self.spent is not None or self.resumable()

    def total(self, usage: Mapping[str, Any]) -> dict[str, Any]:
        """``usage`` plus that of the attempts before it."""
        total = dict(self.spent or {})
        add_usage(total, usage)
        return total

    def resumable(self) -> bool:
        """Whether a cut stream may continue on another attempt."""
        return (
            self.resumes_left > 0
            and self.choices == 1
            and not self.tool_call_sent
            and not self.finished
        )

    def begin_resume(self, echo: str) -> None:
        """The next attempt continues ``text``; the cut one's usage joins what was spent."""
        self.resumes_left -= 1
        self.resumes += 1
        self.spent = self.total(self.cut or {})
        self.cut = None
        self.attempt_text = ""
        self.echo = echo

    def rewrite(self, chunk: ModelChunk) -> ModelChunk | None:
        """The chunk as the client gets it, or None when nothing of it is new."""
        raw: Any = chunk
        if not self.identity:
            self.identity = {
                key: raw[key] for key in ("id", "created", "system_fingerprint") if key in raw
            }
        elif self.resumes:
            raw.update(self.identity)
            if not self._continue(raw):
                return None
        for choice in raw.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.text += content
                self.attempt_text += content
            if delta.get("tool_calls"):
                self.tool_call_sent = True
            if choice.get("finish_reason"):
                self.finished = True
        usage = raw.get("usage")
        if usage and self.spent is not None:
            raw["usage"] = self.total(usage)
        return chunk

    def _continue(self, raw: dict[str, Any]) -> bool:
        """Strip a resumed chunk of what the client already has; False when nothing is left."""
        useful = bool(raw.get("usage"))
        for choice in raw.get("choices") or ():
            delta = choice.get("delta") or {}
            delta.pop("role", None)
            content = delta.get("content")
            if content and self.echo:
                kept = len(_common_prefix(self.echo, content))
                self.echo = self.echo[kept:] if kept == len(content) else ""
                content = delta["content"] = content[kept:]
            elif content:
                self.echo = ""
            if content or delta.get("tool_calls") or choice.get("finish_reason"):
                useful = True
            elif "content" in delta:
                del delta["content"]
        return useful


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]
