"""Stop sequences over streamed text."""

from __future__ import annotations

from collections.abc import Iterable


class StopScanner:
    """Holds back text that could still become a stop sequence."""

    def __init__(self, stops: Iterable[str]) -> None:
        self._stops = [s for s in stops if s]
        self._longest = max((len(s) for s in self._stops), default=0)
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Text safe to emit now, and whether a stop sequence was reached."""
        self.pending += text
        for stop in self._stops:
            index = self.pending.find(stop)
            if index >= 0:
                safe, self.pending = self.pending[:index], ""
                return safe, True
        keep = self._longest - 1
        if keep <= 0 or len(self.pending) <= keep:
            safe, self.pending = ("", self.pending) if keep > 0 else (self.pending, "")
            return safe, False
        safe, self.pending = self.pending[:-keep], self.pending[-keep:]
        return safe, False
