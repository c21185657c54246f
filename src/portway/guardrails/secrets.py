"""The ``secrets`` guardrail: API keys, tokens, private keys and high-entropy assignments,
with detect-secrets' pattern plugins added (``secret_plugins``).

Every pattern runs on RE2 with bounded repetitions (linear in the text, see
tests/test_regex_audit.py). Redacted secrets become ``[SECRET_1]``; they are never
restored in answers.
"""

from __future__ import annotations

from typing import ClassVar

import re2

from portway.guardrails.base import STREAM_WINDOW, Finding, Guardrail
from portway.guardrails.secret_plugins import detect_secrets_detectors
from portway.guardrails.spans import Detector, entropy, scan

# A generic ``key = value`` is a secret only when the value looks random.
MIN_ENTROPY_BITS = 3.5

DETECTORS = (
    Detector.of("ANTHROPIC_KEY", r"\bsk-ant-[A-Za-z0-9_\-]{20,250}"),
    Detector.of("OPENAI_KEY", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,250}"),
    Detector.of("AWS_ACCESS_KEY", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    Detector.of(
        "GITHUB_TOKEN", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"
    ),
    Detector.of("SLACK_TOKEN", r"\bxox[abposr]-[A-Za-z0-9\-]{10,250}"),
    Detector.of(
        "PRIVATE_KEY",
        r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s]*"
        r"(?:-----END [A-Z ]{0,40}PRIVATE KEY-----)?",
    ),
    Detector.of("JWT", r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}"),
    Detector.of(
        "GENERIC_SECRET",
        r"(?i)\b(?:api[_\-]?key|secret|token|passw(?:or)?d|access[_\-]?key|auth)"
        r"[A-Za-z0-9_\-]{0,20}[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?([A-Za-z0-9_+/=.\-]{16,256})",
        group=1,
        accept=lambda value: entropy(value) >= MIN_ENTROPY_BITS,
    ),
)


# A keyword assignment still waiting for (the rest of) its value at the end of a stream.
_OPEN_ASSIGNMENT = re2.compile(
    r"(?i)(?:api[_\-]?key|secret|token|passw(?:or)?d|access[_\-]?key|auth)[A-Za-z0-9_\-]{0,20}"
    r"[\"']?[ \t]{0,3}(?:[:=][ \t]{0,3}[\"']?)?$"
)
_PEM_START = "-----BEGIN"


class SecretsGuardrail(Guardrail):
    name: ClassVar[str] = "secrets"

    def __init__(self) -> None:
        # Ours first: on a tie the detector listed first names the kind.
        self._detectors = DETECTORS + detect_secrets_detectors()

    def detect(self, text: str) -> list[Finding]:
        return scan(self._detectors, text)

    def stream_hold(self, text: str) -> int:
        """Hold back only what may still become a secret: the last word (tokens have no
        spaces), a keyword assignment waiting for its value, an unfinished PEM block; at
        most ``STREAM_WINDOW`` characters."""
        floor = max(0, len(text) - STREAM_WINDOW)
        space = max(text.rfind(char, floor) for char in " \t\n")
        hold = space + 1 if space >= 0 else floor
        assignment = _OPEN_ASSIGNMENT.search(text[max(floor, hold - 64) : hold])
        if assignment is not None:
            hold = max(floor, hold - 64) + assignment.start()
        pem = text.rfind(_PEM_START, floor)
        if pem >= 0 and "-----END" not in text[pem:]:
            hold = min(hold, pem)
        return hold

    def label(self, finding: Finding) -> str:
        return "SECRET"
