"""Shared helpers of the detectors: RE2 scans and span merging."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import re2

from portway.guardrails.base import Finding


@dataclass(frozen=True, slots=True)
class Detector:
    """One RE2 pattern of a kind; ``group`` is the flagged part, ``accept`` a value check."""

    kind: str
    pattern: object  # a compiled re2 pattern
    group: int = 0
    accept: Callable[[str], bool] | None = None

    @classmethod
    def of(
        cls,
        kind: str,
        pattern: str,
        group: int = 0,
        accept: Callable[[str], bool] | None = None,
    ) -> Detector:
        return cls(kind, re2.compile(pattern), group, accept)

    def find(self, text: str) -> Iterable[Finding]:
        for match in self.pattern.finditer(text):  # type: ignore[attr-defined]
            start, end = match.start(self.group), match.end(self.group)
            if start < 0 or end <= start:
                continue
            if self.accept is not None and not self.accept(text[start:end]):
                continue
            yield Finding(self.kind, start, end)


def scan(detectors: Sequence[Detector], text: str) -> list[Finding]:
    """Every detector's findings, overlaps resolved: earliest first, then longest, then the
    detector listed first."""
    found = [
        (finding.start, finding.start - finding.end, order, finding)
        for order, detector in enumerate(detectors)
        for finding in detector.find(text)
    ]
    found.sort(key=lambda item: item[:3])
    kept: list[Finding] = []
    end = -1
    for _, _, _, finding in found:
        if finding.start >= end:
            kept.append(finding)
            end = finding.end
    return kept


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    total = len(value)
    return -sum(count / total * math.log2(count / total) for count in counts.values())
