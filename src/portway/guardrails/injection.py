"""The ``prompt_injection`` guardrail: heuristics for instructions smuggled into user or
tool text (override phrases, persona jailbreaks, system-prompt exfiltration, hidden
Unicode tag characters). Monitor mode is the expected use: heuristics flag, they do not
prove. Patterns are RE2 (linear) with bounded gaps between words.
"""

from __future__ import annotations

from typing import ClassVar

from portway.guardrails.base import Finding, Guardrail
from portway.guardrails.spans import Detector, scan

# A few words may sit between the parts of a phrase ("ignore ALL of the previous ...").
_GAP = r"(?:\s{1,3}[\w'-]{1,20}){0,4}\s{1,3}"

DETECTORS = (
    Detector.of(
        "OVERRIDE",
        rf"(?i)\b(?:ignore|disregard|forget|override|bypass)\b{_GAP}"
        r"(?:previous|prior|above|earlier|preceding|system|all|your|the)\b"
        rf"(?:{_GAP})?(?:instructions?|prompts?|rules|directions|guidelines|messages?)\b",
    ),
    Detector.of(
        "PERSONA",
        r"(?i)\b(?:you\s{1,3}are\s{1,3}now|act\s{1,3}as|pretend\s{1,3}(?:to\s{1,3}be|you\s{1,3}are)|"
        r"from\s{1,3}now\s{1,3}on\s{1,3}you\s{1,3}are)\s{1,3}(?:an?\s{1,3})?"
        r"(?:DAN|developer\s{1,3}mode|jailbroken|unrestricted|unfiltered|evil|uncensored)\b",
    ),
    Detector.of(
        "JAILBREAK",
        r"(?i)\b(?:do\s{1,3}anything\s{1,3}now|DAN\s{1,3}mode|developer\s{1,3}mode\s{1,3}enabled)\b",
    ),
    Detector.of(
        "EXFILTRATION",
        rf"(?i)\b(?:reveal|print|show|repeat|output|display|leak|tell\s{{1,3}}me)\b{_GAP}"
        r"(?:system\s{1,3}prompt|initial\s{1,3}instructions|hidden\s{1,3}instructions|"
        r"instructions\s{1,3}above|text\s{1,3}above)\b",
    ),
    Detector.of(
        "ROLE_OVERRIDE",
        r"(?im)^[ \t]{0,8}(?:#{1,3}[ \t]{0,3})?(?:system|assistant)[ \t]{0,3}:|"
        r"<\|im_start\|>|\[/?INST\]|<<SYS>>",
    ),
    # Unicode tag characters (U+E0000..U+E007F) are invisible and carry ASCII text.
    Detector.of("HIDDEN_UNICODE", "[\U000e0000-\U000e007f]+"),
)


class PromptInjectionGuardrail(Guardrail):
    name: ClassVar[str] = "prompt_injection"
    roles: ClassVar[frozenset[str] | None] = frozenset({"user", "tool", "function"})

    def detect(self, text: str) -> list[Finding]:
        return scan(DETECTORS, text)

    def render(self, kind: str, number: int) -> str:
        return f"[INJECTION_{number}]"
