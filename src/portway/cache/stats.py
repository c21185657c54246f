"""Cache counters of this process (hits, misses, tokens the cache saved)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    semantic_hits: int = 0
    # Near matches the guard refused (their numbers, names, negations... differ).
    semantic_refusals: int = 0
    misses: int = 0
    bypasses: int = 0
    stores: int = 0
    errors: int = 0
    saved_prompt_tokens: int = 0
    saved_completion_tokens: int = 0

    def record_hit(self, usage: dict[str, Any] | None, *, semantic: bool) -> None:
        if semantic:
            self.semantic_hits += 1
        else:
            self.hits += 1
        if usage:
            self.saved_prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.saved_completion_tokens += int(usage.get("completion_tokens") or 0)

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.semantic_hits + self.misses
        return (self.hits + self.semantic_hits) / lookups if lookups else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "semantic_hits": self.semantic_hits,
            "semantic_refusals": self.semantic_refusals,
            "misses": self.misses,
            "bypasses": self.bypasses,
            "stores": self.stores,
            "errors": self.errors,
            "hit_rate": round(self.hit_rate, 6),
            "saved_tokens": {
                "prompt": self.saved_prompt_tokens,
                "completion": self.saved_completion_tokens,
                "total": self.saved_prompt_tokens + self.saved_completion_tokens,
            },
        }
