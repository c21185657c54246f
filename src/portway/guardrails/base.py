"""What a guardrail is: a detector plus what each mode does with its findings.

Contract: a guardrail plugin subclasses ``Guardrail`` and implements ``detect`` (spans in
a text, found in time linear in the text). ``check_input``/``check_output`` apply a
policy's mode to a text: ``block`` raises ``GuardrailBlockedError``, ``redact`` replaces
each finding by a placeholder of the call's ``GuardSession`` (reversible ones are restored
in the answer), ``monitor`` leaves the text alone. Every action is recorded on the
session (counted and logged by the stage; the matched text itself is never logged).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from portway.config import ConfigError, GuardrailMode
from portway.errors import GuardrailBlockedError

ActionKind = Literal["blocked", "redacted", "flagged"]
# How much of a streamed answer a redacting output check holds back by default.
STREAM_WINDOW = 512


@dataclass(frozen=True, slots=True)
class Finding:
    """A span of a text that a guardrail flags; ``kind`` names what it is (``EMAIL``)."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Action:
    """One guardrail decision on a call (for metrics and the log)."""

    guardrail: str
    action: ActionKind
    kinds: tuple[str, ...]


@dataclass(slots=True)
class GuardSession:
    """One call's placeholders: stable per value, restorable when reversible."""

    actions: list[Action] = field(default_factory=list)
    # placeholder -> original, only for placeholders restored in the answer
    reversible: dict[str, str] = field(default_factory=dict)
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    # How many placeholders a resumed session started with (0: a new one).
    resumed_from: int = 0

    def placeholder(
        self, label: str, value: str, render: Callable[[str, int], str], *, restore: bool
    ) -> str:
        """The placeholder of ``value`` (the same one every time it recurs in the call)."""
        key = (label, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        number = self._counts.get(label, 0) + 1
        self._counts[label] = number
        text = render(label, number)
        self._by_value[key] = text
        if restore:
            self.reversible[text] = value
        return text

    @classmethod
    def resumed(cls, saved: Mapping[str, Any]) -> GuardSession:
        """A session continuing a stored conversation's placeholders (see ``saved``)."""
        session = cls()
        for label, value, text in saved.get("entries", ()):
            session._by_value[(label, value)] = text
            session.reversible[text] = value
        session._counts.update({str(k): int(v) for k, v in saved.get("counts", {}).items()})
        session.resumed_from = len(session.reversible)
        return session

    def saved(self) -> dict[str, Any]:
        """The reversible placeholders, to continue them in a later call of a conversation."""
        entries = [
            [label, value, text]
            for (label, value), text in self._by_value.items()
            if self.reversible.get(text) == value
        ]
        return {"entries": entries, "counts": dict(self._counts)}

    def record(self, guardrail: str, action: ActionKind, findings: list[Finding]) -> None:
        kinds = tuple(sorted({finding.kind for finding in findings}))
        self.actions.append(Action(guardrail, action, kinds))

    def restore(self, text: str) -> str:
        """``text`` with every reversible placeholder replaced by its original value."""
        if not self.reversible or "<" not in text:
            return text
        for placeholder, value in self.reversible.items():
            if placeholder in text:
                text = text.replace(placeholder, value)
        return text


class Guardrail(ABC):
    """A guardrail plugin (entry point group ``portway.guardrails``)."""

    name: ClassVar[str]
    # Message roles whose text is checked on input (None: every role).
    roles: ClassVar[frozenset[str] | None] = None
    # Redacted values are restored in the answer (pseudonymization).
    reversible: ClassVar[bool] = False

    def configured(self, options: Mapping[str, Any]) -> Guardrail:
        """This guardrail with a policy's ``options`` (none by default); raises ``ConfigError``."""
        if options:
            raise ConfigError(f"guardrails: {self.name!r} takes no options (got {sorted(options)})")
        return self

    @abstractmethod
    def detect(self, text: str) -> list[Finding]:
        """The spans of ``text`` this guardrail flags, in order, not overlapping."""

    def render(self, kind: str, number: int) -> str:
        """A redacted value's placeholder."""
        return f"[{kind}_{number}]"

    def label(self, finding: Finding) -> str:
        """What numbers placeholders (values of one label share a counter)."""
        return finding.kind

    def detect_output(self, text: str) -> list[Finding]:
        """The spans flagged in a model's answer (``detect`` unless a guardrail narrows it)."""
        return self.detect(text)

    def stream_hold(self, text: str) -> int:
        """Redacting a stream: where the tail that may hold an unfinished finding starts
        (the text before it is sent now)."""
        return max(0, len(text) - STREAM_WINDOW)

    def replace(self, value: str, finding: Finding, session: GuardSession, *, restore: bool) -> str:
        """What a redacted value becomes (a placeholder of the call by default)."""
        return session.placeholder(self.label(finding), value, self.render, restore=restore)

    def mode_for(self, finding: Finding, mode: GuardrailMode) -> GuardrailMode:
        """The mode applied to one finding (a policy may set modes per kind)."""
        return mode

    def check_input(self, text: str, mode: GuardrailMode, session: GuardSession) -> str:
        return self._apply(text, mode, session, restore=self.reversible)

    def check_output(self, text: str, mode: GuardrailMode, session: GuardSession) -> str:
        """Pseudonymized values come back restored; others are checked like inputs."""
        if self.reversible and mode == "redact":
            return session.restore(text)
        return self._apply(text, mode, session, restore=False, output=True)

    def _apply(
        self,
        text: str,
        mode: GuardrailMode,
        session: GuardSession,
        *,
        restore: bool,
        output: bool = False,
    ) -> str:
        findings = self.detect_output(text) if output else self.detect(text)
        if not findings:
            return text
        modes = [self.mode_for(finding, mode) for finding in findings]
        blocked = [finding for finding, how in zip(findings, modes, strict=True) if how == "block"]
        if blocked:
            session.record(self.name, "blocked", blocked)
            kinds = ", ".join(sorted({finding.kind.lower() for finding in blocked}))
            raise GuardrailBlockedError(
                f"Blocked by the {self.name!r} guardrail: the text contains {kinds}."
            )
        flagged = [f for f, how in zip(findings, modes, strict=True) if how == "monitor"]
        if flagged:
            session.record(self.name, "flagged", flagged)
        redacted = [f for f, how in zip(findings, modes, strict=True) if how == "redact"]
        if not redacted:
            return text
        session.record(self.name, "redacted", redacted)
        return self.rewrite(text, redacted, session, restore=restore)

    def rewrite(
        self, text: str, findings: list[Finding], session: GuardSession, *, restore: bool
    ) -> str:
        """``text`` with each finding replaced (see ``replace``)."""
        pieces: list[str] = []
        last = 0
        for finding in findings:
            pieces.append(text[last : finding.start])
            value = text[finding.start : finding.end]
            pieces.append(self.replace(value, finding, session, restore=restore))
            last = finding.end
        pieces.append(text[last:])
        return "".join(pieces)
