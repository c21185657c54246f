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

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from portway.config import ConfigError

WINDOW_CHARS = 1024
MAX_WINDOWS = 48
# The model's classes that mean "instructions aimed at the model" (not pii, harmful content).
INJECTION_CLASSES = frozenset(
    {"prompt_injection", "jailbreak", "data_exfiltration", "model_attack"}
)
_BREAKS = ("\n", ". ", "! ", "? ")
# scikit-learn's default token pattern and whitespace folding (no nested repetition: linear).
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_SPACES = re.compile(r"\s\s+")


def _word_ngrams(text: str, low: int, high: int) -> list[str]:
    tokens = _TOKEN.findall(text.lower())
    grams = list(tokens) if low == 1 else []
    for size in range(max(low, 2), high + 1):
        grams += [" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)]
    return grams


def _char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's ``char_wb``: n-grams inside each space-padded word."""
    grams: list[str] = []
    for word in _SPACES.sub(" ", text.lower()).split():
        padded = f" {word} "
        for size in range(low, high + 1):
            if len(padded) <= size:
                grams.append(padded)  # a short word counts once
                break
            grams += [padded[i : i + size] for i in range(len(padded) - size + 1)]
    return grams


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
    """The classifier's weights, loaded once (about 0.3 s and 35 MB), scored with NumPy.

    The features mirror the package's runtime (scikit-learn's TF-IDF: lower-cased word
    1-2-grams and ``char_wb`` 3-5-grams, sublinear tf, per-block L2 norm); the dot product
    with the coefficients runs in NumPy instead of a Python loop per class (``tests``
    check both give the same scores).
    """

    def __init__(self, model: Any, threshold: float | None = None) -> None:
        self._model = model
        self._classes: list[str] = list(model.classes)
        self.threshold = float(model.threshold if threshold is None else threshold)
        self._word = model.word
        self._char = model.char
        self._offset = int(model.n_word)
        self._coef = np.asarray(model.coef, dtype=np.float64)
        self._intercept = np.asarray(model.intercept, dtype=np.float64)
        self._injection = np.array([name in INJECTION_CLASSES for name in self._classes])

    def with_threshold(self, threshold: float) -> InjectionClassifier:
        return InjectionClassifier(self._model, threshold)

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

    def scores(self, text: str) -> np.ndarray:
        """The raw class scores of ``text`` (before the softmax)."""
        columns: list[int] = []
        values: list[float] = []
        for block, grams, offset in (
            (self._word, _word_ngrams(text, *self._word["ngram_range"]), 0),
            (self._char, _char_wb_ngrams(text, *self._char["ngram_range"]), self._offset),
        ):
            vocabulary, idf = block["vocab"], block["idf"]
            known = [
                (vocabulary[gram], count)
                for gram, count in Counter(grams).items()
                if gram in vocabulary
            ]
            if not known:
                continue
            cols = [col for col, _ in known]
            tf = np.fromiter((count for _, count in known), dtype=np.float64, count=len(known))
            if block["sublinear_tf"]:
                tf = 1.0 + np.log(tf)
            weights = tf * np.asarray([idf[col] for col in cols])
            norm = float(np.sqrt(np.square(weights).sum()))
            columns += [offset + col for col in cols]
            values += list(weights / norm if norm > 0 else weights)
        if not columns:
            return self._intercept.copy()
        # An element-wise product and a sum, not "@": BLAS threads would spin on a busy host.
        return self._intercept + (self._coef[:, columns] * np.asarray(values)).sum(axis=1)

    def score(self, text: str) -> Verdict:
        """The injection-like probability of one window and its top class."""
        scores = self.scores(text)
        exps = np.exp(scores - scores.max())
        probabilities = exps / exps.sum()
        injection = probabilities * self._injection
        top = int(np.argmax(injection))
        return Verdict(float(injection.sum()), self._classes[top] if injection[top] else None)

    def flagged(self, text: str) -> list[tuple[int, int]]:
        """The windows of ``text`` scored as injections."""
        return [
            (start, end)
            for start, end in windows(text)
            if text[start:end].strip() and self.score(text[start:end]).score >= self.threshold
        ]
