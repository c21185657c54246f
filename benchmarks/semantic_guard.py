"""How often does the semantic cache serve a wrong answer, and how often a right one?

Embeds both prompts of every labelled pair in ``tests/cache/data/semantic_pairs.jsonl``
with the bundled all-MiniLM-L6-v2 (the cache's default embedder) and counts, per
similarity threshold, the "different" pairs that would be served as a hit (false hits)
and the "same" pairs (paraphrases) that would, with the similarity alone and with the
guard (``portway.cache.semantic.guard``) on top. Then, at ``--threshold``, the rates
per set (``development``: written with the guard; ``held-out-1``/``-2``: written after
it, before looking at the guard's verdicts), the false hits per kind, and every pair the
cache gets wrong.

    PYTHONPATH=src python benchmarks/semantic_guard.py [--threshold 0.9] [--set NAME]
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from portway.cache.semantic.embedder import bundled_model_path
from portway.cache.semantic.guard import prompt_features
from portway.cache.semantic.minilm import BertSentenceEncoder
from portway.config import SemanticCacheConfig

PAIRS = Path(__file__).parent.parent / "tests" / "cache" / "data" / "semantic_pairs.jsonl"
THRESHOLDS = (0.75, 0.8, 0.825, 0.85, 0.875, 0.9, 0.925, 0.95)


@dataclass(frozen=True, slots=True)
class ScoredPair:
    a: str
    b: str
    same: bool
    kind: str
    set: str
    similarity: float
    conflict: str | None

    def hit(self, threshold: float, *, guarded: bool) -> bool:
        return self.similarity >= threshold and (not guarded or self.conflict is None)


def score(path: Path, max_chars: int, only: str | None) -> list[ScoredPair]:
    rows = [orjson.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if only is None or row["set"] == only]
    encoder = BertSentenceEncoder.from_directory(bundled_model_path())
    texts = sorted({row[side] for row in rows for side in ("a", "b")})
    vectors = dict(zip(texts, encoder.encode(texts), strict=True))
    scored = []
    for row in rows:
        first = prompt_features(row["a"], max_chars)
        second = prompt_features(row["b"], max_chars)
        conflict = "too long" if first is None or second is None else first.conflict(second)
        similarity = float(np.dot(vectors[row["a"]], vectors[row["b"]]))
        same = row["label"] == "same"
        scored.append(
            ScoredPair(row["a"], row["b"], same, row["kind"], row["set"], similarity, conflict)
        )
    return scored


def rate(pairs: list[ScoredPair], threshold: float, *, guarded: bool) -> float:
    return sum(pair.hit(threshold, guarded=guarded) for pair in pairs) / max(len(pairs), 1)


def served(pairs: list[ScoredPair], threshold: float) -> str:
    return f"{sum(pair.hit(threshold, guarded=True) for pair in pairs)}/{len(pairs)}"


def main() -> None:
    defaults = SemanticCacheConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--max-chars", type=int, default=defaults.max_prompt_chars)
    parser.add_argument("--set", dest="only", help="only this set of pairs")
    args = parser.parse_args()
    scored = score(args.pairs, args.max_chars, args.only)
    same = [pair for pair in scored if pair.same]
    different = [pair for pair in scored if not pair.same]
    print(f"{len(scored)} pairs: {len(same)} paraphrases, {len(different)} different")
    print("threshold  false hits: raw / guarded   paraphrase hits: raw / guarded")
    for threshold in sorted({*THRESHOLDS, args.threshold}):
        print(
            f"{threshold:9.3f}  {rate(different, threshold, guarded=False):12.1%} / "
            f"{rate(different, threshold, guarded=True):6.1%}   "
            f"{rate(same, threshold, guarded=False):15.1%} / "
            f"{rate(same, threshold, guarded=True):6.1%}"
        )
    print(f"\nat threshold {args.threshold}, guarded: served false hits, paraphrase hits")
    for name in sorted({pair.set for pair in scored}):
        of_set = [pair for pair in scored if pair.set == name]
        wrong = served([pair for pair in of_set if not pair.same], args.threshold)
        right = served([pair for pair in of_set if pair.same], args.threshold)
        print(f"  {name:12s} false hits {wrong:>8s}   paraphrase hits {right:>8s}")
    print(f"\nat threshold {args.threshold}: false hits by kind (raw -> guarded)")
    for kind, total in sorted(Counter(pair.kind for pair in different).items()):
        of_kind = [pair for pair in different if pair.kind == kind]
        raw = sum(pair.hit(args.threshold, guarded=False) for pair in of_kind)
        guarded = sum(pair.hit(args.threshold, guarded=True) for pair in of_kind)
        print(f"  {kind:11s} {total:3d} pairs: {raw:3d} -> {guarded}")
    print("\nserved wrongly (false hits):")
    for pair in different:
        if pair.hit(args.threshold, guarded=True):
            print(f"  {pair.similarity:.3f} [{pair.kind}] {pair.a!r} ~ {pair.b!r}")
    print("\nparaphrases refused by the guard:")
    for pair in same:
        if pair.hit(args.threshold, guarded=False) and pair.conflict is not None:
            print(f"  {pair.similarity:.3f} ({pair.conflict}) {pair.a!r} ~ {pair.b!r}")
    print("\nparaphrases below the threshold:")
    for pair in same:
        if pair.similarity < args.threshold:
            print(f"  {pair.similarity:.3f} {pair.a!r} ~ {pair.b!r}")


if __name__ == "__main__":
    main()
