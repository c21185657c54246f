"""Operator-written regular expressions that are searched in client text, compiled with RE2.

Contract: ``compile_pattern(text)`` returns a ``TextPattern`` whose ``search`` runs in
time linear in the text, whatever the pattern (RE2 builds an automaton; it never
backtracks), or raises ``PatternError`` for what RE2 does not accept: backreferences and
lookarounds. Python's ``re`` has no timeout, so a pattern such as ``(a+)+$`` in a
routing rule would let one crafted prompt hold the event loop for minutes. RE2's
``\\w``, ``\\d`` and ``\\b`` are ASCII; ``\\pL`` matches any letter.
"""

from __future__ import annotations

from typing import Protocol, cast

import re2


class PatternError(ValueError):
    """RE2 cannot compile the pattern."""


class TextPattern(Protocol):
    def search(self, text: str) -> object | None: ...


def compile_pattern(pattern: str) -> TextPattern:
    try:
        return cast(TextPattern, re2.compile(pattern))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(
            f"not a valid regular expression for RE2 ({reason}); RE2 runs in linear time and has "
            "no backreferences or lookarounds"
        ) from None
