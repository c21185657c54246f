"""Retention of stored content: ``none`` (zero retention), N days, or keep (unset).

A shared leaf: settings, wire types and the principal all use it, and it imports
nothing of Portway.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_DAYS = 36_500
ZERO = "none"
RETENTION_HELP = "retention must be 'none' or a whole number of days from 1 to 36500"


def parse_retention(value: object) -> str | None:
    """The stored label: ``"none"``, ``"<days>"``, or None (not set); ValueError if bad."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == ZERO:
            return ZERO
        if not text.isdigit():
            raise ValueError(RETENTION_HELP)
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise ValueError(RETENTION_HELP)
    return str(value)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long a principal's content may be kept: ``days`` None keeps it, 0 keeps none."""

    days: int | None = None

    @classmethod
    def of(cls, label: str | None) -> Retention:
        if label is None:
            return KEEP
        if label == ZERO:
            return NONE
        return cls(int(label))

    @property
    def zero(self) -> bool:
        """Zero retention: no content of this principal is stored anywhere."""
        return self.days == 0

    @property
    def stores_content(self) -> bool:
        return self.days != 0

    @property
    def seconds(self) -> float | None:
        """How long content may live; None: until deleted."""
        return None if self.days is None else self.days * 86_400.0

    @property
    def label(self) -> str | int | None:
        """As the API shows it: ``"none"``, a number of days, or null."""
        if self.days is None:
            return None
        return ZERO if self.days == 0 else self.days


KEEP = Retention(None)
NONE = Retention(0)


def effective(*labels: str | None) -> Retention:
    """The first label that is set (key, then team, then the server default)."""
    for label in labels:
        if label is not None:
            return Retention.of(label)
    return KEEP
