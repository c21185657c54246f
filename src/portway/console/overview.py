"""The overview page's numbers: chart series and headline figures from ledger buckets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from portway.accounting.pricing import usd
from portway.store.models.usage import LATENCY_BINS_MS
from portway.store.usage_series import Bucket


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    label: str
    seconds: int
    step: int


WINDOWS = {
    window.name: window
    for window in (
        Window("1h", "Last hour", 3600, 60),
        Window("24h", "Last 24 hours", 86400, 900),
        Window("7d", "Last 7 days", 7 * 86400, 3600),
        Window("30d", "Last 30 days", 30 * 86400, 6 * 3600),
    )
}
DEFAULT_WINDOW = "24h"


def percentile(bins: Sequence[int], fraction: float) -> float | None:
    """The latency (ms) below which ``fraction`` of the calls fall, interpolated in its bin."""
    total = sum(bins)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(bins):
        if count and seen + count >= rank:
            lower = LATENCY_BINS_MS[index - 1] if index > 0 else 0
            if index >= len(LATENCY_BINS_MS):
                return float(lower)  # the open-ended bin: its lower bound is all we know
            upper = LATENCY_BINS_MS[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return float(LATENCY_BINS_MS[-1])


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def overview(buckets: Sequence[Bucket], window: Window, now: float) -> dict[str, Any]:
    """Chart series (one point per step, empty steps as zero) and the window's totals."""
    step = window.step
    first = (int(now - window.seconds) // step + 1) * step
    by_start = {bucket.start: bucket for bucket in buckets}
    series: dict[str, list[Any]] = {
        name: []
        for name in ("t", "rps", "p50", "p99", "error_rate", "tokens", "spend", "cache_rate")
    }
    total = Bucket(start=first)
    for start in range(first, int(now) // step * step + 1, step):
        bucket = by_start.get(start) or Bucket(start=start)
        series["t"].append(start)
        series["rps"].append(round(bucket.requests / step, 4))
        series["p50"].append(_round(percentile(bucket.latency_bins, 0.5)))
        series["p99"].append(_round(percentile(bucket.latency_bins, 0.99)))
        series["error_rate"].append(_percent(_ratio(bucket.errors, bucket.requests)))
        series["tokens"].append(bucket.prompt_tokens + bucket.completion_tokens)
        series["spend"].append(usd(bucket.cost_nanos))
        series["cache_rate"].append(_percent(_ratio(bucket.cache_hits, bucket.requests)))
        _add(total, bucket)
    totals = {
        "requests": total.requests,
        "rps": total.requests / window.seconds,
        "p50": percentile(total.latency_bins, 0.5),
        "p99": percentile(total.latency_bins, 0.99),
        "error_rate": _percent(_ratio(total.errors, total.requests)),
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "spend": usd(total.cost_nanos),
        "cache_rate": _percent(_ratio(total.cache_hits, total.requests)),
    }
    return {"series": series, "totals": totals, "step": step}


def _add(total: Bucket, bucket: Bucket) -> None:
    total.requests += bucket.requests
    total.errors += bucket.errors
    total.cache_hits += bucket.cache_hits
    total.prompt_tokens += bucket.prompt_tokens
    total.completion_tokens += bucket.completion_tokens
    total.cost_nanos += bucket.cost_nanos
    for index, count in enumerate(bucket.latency_bins):
        total.latency_bins[index] += count


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _percent(value: float | None) -> float | None:
    return round(value * 100, 2) if value is not None else None
