"""The overview's figures from time buckets: percentiles from histograms, filled series."""

from __future__ import annotations

from portway.console.overview import WINDOWS, overview, percentile
from portway.store.models.usage import LATENCY_BINS_MS, LATENCY_COLUMNS
from portway.store.usage_series import Bucket


def test_percentiles_interpolate_inside_the_bin() -> None:
    bins = [0] * len(LATENCY_COLUMNS)
    bins[4] = 100  # every call between 50 and 100 ms
    assert percentile(bins, 0.5) == 75.0
    assert percentile(bins, 0.99) == 99.5
    assert percentile([0] * len(LATENCY_COLUMNS), 0.5) is None
    overflow = [0] * len(LATENCY_COLUMNS)
    overflow[-1] = 3
    assert percentile(overflow, 0.99) == float(LATENCY_BINS_MS[-1])


def test_series_have_a_point_per_step_and_totals_add_up() -> None:
    window = WINDOWS["1h"]
    now = 1_764_000_000.0 + 30
    busy = Bucket(start=int(now) // 60 * 60 - 120, requests=120, errors=6, cache_hits=30)
    busy.prompt_tokens, busy.completion_tokens, busy.cost_nanos = 1000, 500, 2_000_000_000
    busy.latency_bins[5] = 120
    data = overview([busy], window, now)
    series = data["series"]
    assert len(series["t"]) == 60
    steps = {later - earlier for earlier, later in zip(series["t"], series["t"][1:], strict=False)}
    assert steps == {60}
    index = series["t"].index(busy.start)
    assert series["rps"][index] == 2.0
    assert series["error_rate"][index] == 5.0
    assert series["cache_rate"][index] == 25.0
    assert series["spend"][index] == 2.0
    assert series["p50"][index] is not None and series["p50"][index - 1] is None
    totals = data["totals"]
    assert totals["requests"] == 120 and totals["error_rate"] == 5.0
    assert totals["prompt_tokens"] == 1000 and totals["spend"] == 2.0
