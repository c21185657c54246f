"""Usage reports for the admin API and the CLI: parse filters, render JSON, CSV and tables."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import Any

from portway.accounting.pricing import usd
from portway.store.usage import GROUP_COLUMNS, UsageFilter

SUMMARY_FIELDS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost",
    "cost_saved",
    "errors",
    "cache_hits",
    "avg_latency_ms",
)


def parse_time(value: str | None) -> float | None:
    """Epoch seconds, or an ISO date/time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def parse_group_by(value: str | None) -> list[str]:
    """``key,day`` → ``["key", "day"]``; raises ValueError naming an unknown group."""
    if not value:
        return []
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in GROUP_COLUMNS]
    if unknown:
        raise ValueError(
            f"unknown group {unknown[0]!r}; use any of: {', '.join(sorted(GROUP_COLUMNS))}"
        )
    return names


def usage_filter(params: Mapping[str, str | None]) -> UsageFilter:
    return UsageFilter(
        key_id=params.get("key") or None,
        user_id=params.get("user") or None,
        team_id=params.get("team") or None,
        model=params.get("model") or None,
        since=parse_time(params.get("since")),
        until=parse_time(params.get("until")),
    )


def present(summary: dict[str, Any]) -> dict[str, Any]:
    """Money in USD, averages rounded."""
    item = dict(summary)
    item["cost"] = usd(int(item.pop("cost_nanos") or 0))
    item["cost_saved"] = usd(int(item.pop("cost_saved_nanos") or 0))
    latency = item.get("avg_latency_ms")
    item["avg_latency_ms"] = round(float(latency), 3) if latency is not None else None
    for name in ("prompt_tokens", "completion_tokens", "cached_tokens", "requests"):
        item[name] = int(item[name] or 0)
    return item


# A spreadsheet evaluates a cell starting with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell spreadsheets show as text: client-chosen names never run as formulas."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(items: Sequence[dict[str, Any]], group_by: Sequence[str]) -> str:
    buffer = io.StringIO()
    # RFC 4180 line ends: a cell holding a CR or LF is then quoted, so it cannot split a row.
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = [*group_by, *SUMMARY_FIELDS]
    writer.writerow(columns)
    for item in items:
        writer.writerow([csv_cell(item.get(c)) for c in columns])
    return buffer.getvalue()


def to_table(items: Sequence[dict[str, Any]], group_by: Sequence[str]) -> str:
    columns = [*group_by, *SUMMARY_FIELDS]

    def cell(item: dict[str, Any], column: str) -> str:
        value = item.get(column)
        if value is None:
            return "-"
        if column in ("cost", "cost_saved"):
            return f"${value:.6f}"
        return str(value)

    rows = [[cell(item, column) for column in columns] for item in items]
    widths = [
        max([len(column), *(len(row[i]) for row in rows)]) for i, column in enumerate(columns)
    ]
    lines = ["  ".join(column.ljust(widths[i]) for i, column in enumerate(columns))]
    lines.append("  ".join("-" * width for width in widths))
    for row in rows:
        lines.append("  ".join(value.ljust(widths[i]) for i, value in enumerate(row)))
    return "\n".join(lines)
