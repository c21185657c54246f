"""Budget periods: their names, and when each one begins and ends (UTC).

Contract: a budget resets at 00:00 UTC (``daily``), Monday 00:00 UTC (``weekly``) and
the 1st of the month 00:00 UTC (``monthly``); ``total`` never resets (it began at 0 and
never ends). A leaf: settings, wire types, the store and accounting all import it.
"""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

Period = Literal["daily", "weekly", "monthly", "total"]
PERIODS: tuple[Period, ...] = get_args(Period)
DAY = 86_400


def period_start(period: str, now: float) -> int:
    """Epoch seconds at which the period containing ``now`` began (0 for ``total``)."""
    if period == "total":
        return 0
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start = day
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
    elif period == "monthly":
        start = day.replace(day=1)
    else:
        raise ValueError(f"unknown budget period {period!r}")
    return calendar.timegm(start.timetuple())


def period_end(period: str, start: int) -> float:
    """When the period that began at ``start`` ends (never, for ``total``)."""
    if period == "total":
        return math.inf
    if period == "daily":
        return start + DAY
    if period == "weekly":
        return start + 7 * DAY
    first = datetime.fromtimestamp(start, UTC)
    month = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return calendar.timegm(month.timetuple())


class PeriodStarts:
    """``period_start`` with each kind's current period kept until it ends (hot path)."""

    def __init__(self) -> None:
        self._current: dict[str, tuple[int, float]] = {}

    def __call__(self, period: str, now: float) -> int:
        current = self._current.get(period)
        if current is not None and current[0] <= now < current[1]:
            return current[0]
        start = period_start(period, now)
        self._current[period] = (start, period_end(period, start))
        return start
