"""Restoring pseudonymized values in a streamed answer, placeholders split across chunks included.

Contract: ``StreamRestorer.feed(key, text)`` returns what can be shown now, restored; it
holds back only a tail that could still be the start of a placeholder (``<`` followed by
at most ``MAX_PLACEHOLDER`` name characters), so time to first token barely moves.
``flush(key)`` returns the held tail at the end. Keys separate independent texts (each
choice's content, each tool call's arguments).
"""

from __future__ import annotations

from collections.abc import Hashable

from portway.guardrails.base import GuardSession

# "<CREDIT_CARD_123456>" is 20 characters; no placeholder is longer than this.
MAX_PLACEHOLDER = 40
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _held_from(text: str) -> int:
    """Where the tail that may be an unfinished placeholder starts (len(text): none)."""
    start = text.rfind("<", max(0, len(text) - MAX_PLACEHOLDER))
    if start < 0:
        return len(text)
    if all(char in _NAME_CHARS for char in text[start + 1 :]):
        return start
    return len(text)


class StreamRestorer:
    """Per-stream state: the held tail of each text being restored."""

    def __init__(self, session: GuardSession) -> None:
        self._session = session
        self._held: dict[Hashable, str] = {}

    def feed(self, key: Hashable, text: str) -> str:
        pending = self._held.pop(key, "") + text
        cut = _held_from(pending)
        if cut < len(pending):
            self._held[key] = pending[cut:]
        return self._session.restore(pending[:cut])

    def flush(self, key: Hashable) -> str:
        return self._session.restore(self._held.pop(key, ""))

    def pending(self) -> list[Hashable]:
        return [key for key, text in self._held.items() if text]
