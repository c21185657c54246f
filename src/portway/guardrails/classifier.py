"""The offline prompt-injection classifier: SecureVector Guardian (``securevector-guardian-model``,
Apache-2.0; TF-IDF word and character n-grams with a logistic regression, weights in the
wheel, a pure-Python runtime).

Loaded once from the wheel, never downloaded (``resolve_runtime(download=False)``). A text
is scored in windows of at most ``WINDOW_CHARS`` characters cut at line or sentence ends (a
short injection buried in a long document is not diluted), at most ``MAX_WINDOWS`` of them:
the CPU spent on one text is bounded whatever its length (the heuristics still scan all of
it). A window is an injection when the probability of the injection-like classes reaches
``threshold`` (the model's own calibrated threshold by default).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from portway.config import ConfigError

WINDOW_CHARS = 600
MAX_WINDOWS = 48
# The model's classes that mean "instructions aimed at the model" (not pii, harmful content).
INJECTION_CLASSES = frozenset(
    {"prompt_injection", "jailbreak", "data_exfiltration", "model_attack"}
)
_BREAKS = ("\n", ". ", "! ", "? ")


def windows(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` spans covering ``text`` (up to ``MAX_WINDOWS``), cut at breaks."""
    start, count = 0, 0
    while start < len(text) and count < MAX_WINDOWS:
        end = min(len(text), start + WINDOW_CHARS)
        if end < len(text):
            cut = max(text.rfind(mark, start + WINDOW_CHARS // 2, end) for mark in _BREAKS)
            if cut > start:
                end = cut + 1
        yield start, end
        start, count = end, count + 1


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float
    category: str | None


class InjectionClassifier:
    """The classifier's weights, loaded once (about 0.3 s and 35 MB)."""

    def __init__(self, model: Any, threshold: float | None = None) -> None:
        self._model = model
        self._classes: list[str] = list(model.classes)
        self.threshold = float(model.threshold if threshold is None else threshold)

    @classmethod
    def load(cls, threshold: float | None = None) -> InjectionClassifier:
        """Raises ``ConfigError`` when the package or its bundled weights are missing."""
        try:
            from svguardian import resolve_runtime
            from svguardian.model.pure_infer import PureGuardian
        except ImportError as exc:
            raise ConfigError(
                "guardrails: prompt_injection's classifier needs `securevector-guardian-model` "
                "(pip install securevector-guardian-model), or set `classifier: false`"
            ) from exc
        path = resolve_runtime(download=False)  # never a download at run time
        if not os.path.exists(path):
            raise ConfigError(
                f"guardrails: the prompt-injection classifier's weights are missing ({path})"
            )
        return cls(PureGuardian.load(path), threshold)

    def score(self, text: str) -> Verdict:
        """The injection-like probability of one window and its top class."""
        scores = self._model._scores(text)  # the runtime's raw class scores (pinned < 2)
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        total = sum(exps)
        probabilities = [value / total for value in exps]
        ranked = [
            (probability, name)
            for name, probability in zip(self._classes, probabilities, strict=True)
            if name in INJECTION_CLASSES
        ]
        score = sum(probability for probability, _ in ranked)
        return Verdict(score, max(ranked)[1] if ranked else None)

    def flagged(self, text: str) -> list[tuple[int, int]]:
        """The windows of ``text`` scored as injections."""
        return [
            (start, end)
            for start, end in windows(text)
            if text[start:end].strip() and self.score(text[start:end]).score >= self.threshold
        ]
