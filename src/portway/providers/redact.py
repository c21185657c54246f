"""What of an upstream's words may reach a client: never its hosts, ports or key fragments.

Contract: ``UpstreamRedactor.client_safe(error)`` rewrites a provider error's message in
place: the deployment's own host (with and without its port), its base URL and its
credential header values, any URL, IPv4 address (with port) and key-like token
(``sk-...``, ``Bearer ...``, masked runs such as ``****abcd``) become placeholders. The
original text moves to ``error.detail``, which the router logs with the
request id and which is never rendered. The patterns are anchored, bounded and have
no nested quantifiers, so they run in linear time on any text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from portway.errors import PortwayError

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\bhttps?://[^\s\"'<>]+"), "[upstream url]"),
    (re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"), "Bearer [redacted]"),
    (re.compile(r"\b(?:sk|pk|rk|pw)-[A-Za-z0-9*._-]{6,}"), "[redacted key]"),
    (re.compile(r"\bAIza[A-Za-z0-9_-]{10,}"), "[redacted key]"),
    (re.compile(r"\*{3,}[A-Za-z0-9_-]{0,8}"), "[redacted key]"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"), "[upstream host]"),
)
# Shorter header values (e.g. "json") are not secrets worth hiding and would mangle text.
_MIN_SECRET_CHARS = 8


class UpstreamRedactor:
    """Scrubs one deployment's upstream text of what identifies or authenticates it."""

    def __init__(self, hosts: Iterable[str], secrets: Iterable[str]) -> None:
        literals = {h for h in hosts if h} | {s for s in secrets if len(s) >= _MIN_SECRET_CHARS}
        # Longest first, so "host:port" goes before "host".
        self._literals = sorted(literals, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for literal in self._literals:
            text = text.replace(literal, "[upstream]")
        for pattern, placeholder in _PATTERNS:
            text = pattern.sub(placeholder, text)
        return text

    def client_safe(self, error: PortwayError) -> PortwayError:
        """The error with a message fit for the client; the original kept in ``detail``."""
        original = error.message
        safe = self.scrub(original)
        if safe != original:
            error.message = safe
            error.detail = original if error.detail is None else f"{original}; {error.detail}"
        return error
