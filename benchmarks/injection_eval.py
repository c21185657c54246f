"""Precision and recall of the prompt_injection guardrail on a labelled set.

The set (benchmarks/data/prompt_injection.jsonl) holds direct and indirect injections
(documents, tool results, retrieved chunks) and benign requests, hard negatives
included; each row names the public source its technique comes from. Detectors compared:
the heuristics alone, the classifier alone, both (what the guardrail runs).

    python benchmarks/injection_eval.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from portway.guardrails.classifier import InjectionClassifier
from portway.guardrails.injection import DETECTORS, PromptInjectionGuardrail
from portway.guardrails.spans import scan

DATA = Path(__file__).parent / "data" / "prompt_injection.jsonl"


def measure(rows: list[dict[str, object]], flagged: Callable[[str], bool]) -> dict[str, float]:
    tp = fp = fn = tn = 0
    for row in rows:
        hit, truth = flagged(str(row["text"])), row["label"] == 1
        tp += hit and truth
        fp += hit and not truth
        fn += truth and not hit
        tn += not hit and not truth
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
    }


def main() -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    model = InjectionClassifier.load()
    guardrail = PromptInjectionGuardrail(model)
    detectors: dict[str, Callable[[str], bool]] = {
        "heuristics": lambda text: bool(scan(DETECTORS, text)),
        "classifier": lambda text: bool(model.flagged(text)),
        "both": lambda text: bool(guardrail.detect(text)),
    }
    injections = sum(1 for row in rows if row["label"] == 1)
    print(f"{len(rows)} texts: {injections} injections, {len(rows) - injections} benign")
    for name, flagged in detectors.items():
        for kind in ("direct", "indirect", None):
            subset = [
                r for r in rows if kind is None or r["kind"] in (kind, "benign", "hard_negative")
            ]
            result = measure(subset, flagged)
            label = kind or "all"
            print(
                f"{name:11s} {label:9s} precision {result['precision']:.2f} "
                f"recall {result['recall']:.2f} false positives {result['false_positive_rate']:.2f}"
            )


if __name__ == "__main__":
    main()
