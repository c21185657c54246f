"""The ``pii`` guardrail: emails, phones, card numbers (Luhn), IBANs (mod 97), IPs, US SSNs.

In ``redact`` mode it pseudonymizes: each value becomes a stable placeholder of the call
(``<EMAIL_1>``), the provider sees only placeholders, and the answer gets the values back
(streams too: ``restore.StreamRestorer``). Patterns run on RE2 with bounded repetitions;
checksums and ``ipaddress`` weed out look-alikes.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from portway.guardrails.base import Finding, Guardrail
from portway.guardrails.spans import Detector, scan


def _digits(value: str) -> str:
    return "".join(char for char in value if char.isdigit())


def luhn_valid(value: str) -> bool:
    digits = _digits(value)
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban_valid(value: str) -> bool:
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def ssn_valid(value: str) -> bool:
    area, group, serial = value.split("-")
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


def ipv6_valid(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def phone_valid(value: str) -> bool:
    count = len(_digits(value))
    return 9 <= count <= 15 if not value.startswith("+") else 8 <= count <= 15


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"

DETECTORS = (
    Detector.of(
        "EMAIL", r"\b[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8}\b"
    ),
    Detector.of("CREDIT_CARD", r"\b[0-9](?:[ \-]?[0-9]){12,18}\b", accept=luhn_valid),
    Detector.of(
        "IBAN", r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b", accept=iban_valid
    ),
    Detector.of("US_SSN", r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", accept=ssn_valid),
    Detector.of("IP_ADDRESS", rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b"),
    Detector.of(
        "IP_ADDRESS", r"(?:\b[0-9A-Fa-f]{1,4}:|::)[0-9A-Fa-f:]{1,37}[0-9A-Fa-f]", accept=ipv6_valid
    ),
    Detector.of(
        "PHONE",
        r"(?:\+[1-9][0-9]{0,2}[ .\-]?)?(?:\([0-9]{1,4}\)[ .\-]?)?"
        r"\b[0-9]{2,4}(?:[ .\-]?[0-9]{2,4}){1,5}\b",
        accept=phone_valid,
    ),
)


class PiiGuardrail(Guardrail):
    name: ClassVar[str] = "pii"
    reversible: ClassVar[bool] = True

    def detect(self, text: str) -> list[Finding]:
        return scan(DETECTORS, text)

    def render(self, kind: str, number: int) -> str:
        return f"<{kind}_{number}>"
