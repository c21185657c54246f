"""The ``pii`` guardrail: personal data found by RE2 patterns plus checksums.

Kinds: ``EMAIL``, ``PHONE``, ``CREDIT_CARD`` (Luhn), ``IBAN`` (mod 97), ``IP_ADDRESS``
(v4, v6), ``URL``, ``CRYPTO_WALLET`` (Bitcoin base58check and bech32 checksums, Ethereum),
national ids (``US_SSN``, ``US_ITIN``, ``UK_NINO``, ``ES_DNI`` with its check letter,
``IN_AADHAAR`` with Verhoeff), ``DATE_OF_BIRTH`` (a date after "born", "DOB", "date of
birth"). Presidio's analyzer was measured as the detector and not kept: see the README.

In ``redact`` mode it pseudonymizes: each value becomes a stable placeholder of the call
(``<EMAIL_1>``), the provider sees only placeholders, and the answer gets the values back
(streams too: ``restore.StreamRestorer``). The ``entities`` option sets a mode per kind:
``pseudonymize`` (the default under ``redact``), ``mask`` (irreversible ``[EMAIL]``),
``block``, or ``allow`` (not checked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, get_args

from portway.config import ConfigError, GuardrailMode
from portway.guardrails.base import Finding, Guardrail, GuardSession
from portway.guardrails.pii_checks import (
    base58check_valid,
    bech32_valid,
    dni_valid,
    iban_valid,
    ipv6_valid,
    luhn_valid,
    nino_valid,
    phone_valid,
    ssn_valid,
    verhoeff_valid,
)
from portway.guardrails.spans import Detector, scan

EntityMode = Literal["pseudonymize", "mask", "block", "allow"]

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]{0,6}\.?"
_DATE = (
    r"(?:[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-][0-9]{2,4}|[0-9]{4}-[0-9]{2}-[0-9]{2}|"
    rf"[0-9]{{1,2}}(?:st|nd|rd|th)?[ \t]{{1,3}}{_MONTH},?[ \t]{{1,3}}[0-9]{{4}}|"
    rf"{_MONTH}[ \t]{{1,3}}[0-9]{{1,2}}(?:st|nd|rd|th)?,?[ \t]{{1,3}}[0-9]{{4}})"
)

# Listed most specific first: on spans starting at the same place, the longest wins, then
# the detector listed first (an Aadhaar number is not a phone number).
DETECTORS = (
    Detector.of(
        "URL",
        # Unbounded runs, not {1,253} and {0,1000}: RE2 unrolls a counted repetition into
        # as many states, and on a run of URL characters its matcher then spent ~40 us a
        # character (a 500 KB prompt of "https://a.b/" took 20 s); a run is one URL.
        r"\b(?:https?|ftp)://[A-Za-z0-9\-._~%]+(?::[0-9]{1,5})?"
        # A trailing full stop, comma or bracket is the sentence's, not the URL's.
        r"(?:[/?#](?:[A-Za-z0-9\-._~%!$&'()*+,;=:@/?#]*[A-Za-z0-9\-_~%$&*+=@/#])?)?",
    ),
    Detector.of(
        "EMAIL", r"\b[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8}\b"
    ),
    Detector.of("CREDIT_CARD", r"\b[0-9](?:[ \-]?[0-9]){12,18}\b", accept=luhn_valid),
    Detector.of(
        "IBAN", r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b", accept=iban_valid
    ),
    Detector.of("CRYPTO_WALLET", r"\b[13][1-9A-HJ-NP-Za-km-z]{25,34}\b", accept=base58check_valid),
    Detector.of("CRYPTO_WALLET", r"\b(?:bc|tb)1[02-9ac-hj-np-z]{11,71}\b", accept=bech32_valid),
    Detector.of("CRYPTO_WALLET", r"\b0x[0-9a-fA-F]{40}\b"),
    Detector.of("US_SSN", r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", accept=ssn_valid),
    Detector.of("US_ITIN", r"\b9[0-9]{2}-(?:5[0-9]|6[0-5]|7[0-9]|8[0-8]|9[0-24-9])-[0-9]{4}\b"),
    Detector.of(
        "UK_NINO",
        r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b",
        accept=nino_valid,
    ),
    Detector.of("ES_DNI", r"\b(?:[0-9]{8}|[XYZ][0-9]{7})-?[A-Z]\b", accept=dni_valid),
    Detector.of(
        "IN_AADHAAR", r"\b[2-9][0-9]{3}[ \-]?[0-9]{4}[ \-]?[0-9]{4}\b", accept=verhoeff_valid
    ),
    Detector.of(
        "DATE_OF_BIRTH",
        r"(?i)\b(?:born(?:[ \t]{1,3}on)?|d\.?o\.?b\.?|date[ \t]{1,3}of[ \t]{1,3}birth|"
        r"birth[ \t]{0,3}date|birthday)[ \t]{0,3}(?:is[ \t]{1,3}|was[ \t]{1,3}|[:=,\-][ \t]{0,3})?"
        rf"({_DATE})",
        group=1,
    ),
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
KINDS = frozenset(detector.kind for detector in DETECTORS)
_ENTITY_MODES: frozenset[str] = frozenset(get_args(EntityMode))


class PiiGuardrail(Guardrail):
    name: ClassVar[str] = "pii"
    reversible: ClassVar[bool] = True

    def __init__(self, entities: Mapping[str, EntityMode] | None = None) -> None:
        self._entities: dict[str, EntityMode] = dict(entities or {})
        allowed = {kind for kind, how in self._entities.items() if how == "allow"}
        self._detectors = tuple(d for d in DETECTORS if d.kind not in allowed)

    def configured(self, options: Mapping[str, Any]) -> Guardrail:
        unknown = set(options) - {"entities"}
        if unknown:
            raise ConfigError(f"guardrails: pii has no option {sorted(unknown)} (known: entities)")
        entities = options.get("entities") or {}
        if not isinstance(entities, Mapping):
            raise ConfigError("guardrails: pii `entities` maps a kind (EMAIL) to a mode")
        for kind, how in entities.items():
            if kind not in KINDS:
                raise ConfigError(
                    f"guardrails: pii has no entity {kind!r} (known: {', '.join(sorted(KINDS))})"
                )
            if how not in _ENTITY_MODES:
                raise ConfigError(
                    f"guardrails: pii entity {kind} mode {how!r} is not one of "
                    f"{', '.join(sorted(_ENTITY_MODES))}"
                )
        return PiiGuardrail(entities) if entities else self

    def detect(self, text: str) -> list[Finding]:
        return scan(self._detectors, text)

    def mode_for(self, finding: Finding, mode: GuardrailMode) -> GuardrailMode:
        how = self._entities.get(finding.kind)
        if how is None or mode == "monitor":  # monitor never changes or blocks
            return mode
        return "block" if how == "block" else "redact"

    def replace(self, value: str, finding: Finding, session: GuardSession, *, restore: bool) -> str:
        if self._entities.get(finding.kind) == "mask":
            return f"[{finding.kind}]"
        return super().replace(value, finding, session, restore=restore)

    def render(self, kind: str, number: int) -> str:
        return f"<{kind}_{number}>"
