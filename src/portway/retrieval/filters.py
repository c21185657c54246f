"""Attribute filters of vector-store search (OpenAI's ``ComparisonFilter``/``CompoundFilter``)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from portway.vector_stores.wire import ComparisonFilter, CompoundFilter, Filter


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(left: Any, right: Any) -> bool:
        numbers = (int, float)
        same_kind = (isinstance(left, numbers) and isinstance(right, numbers)) or (
            isinstance(left, str) and isinstance(right, str)
        )
        return same_kind and not isinstance(left, bool) and compare(left, right)

    return check


def _member(left: Any, right: Any) -> bool:
    return isinstance(right, list) and left in right


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": _ordered(operator.gt),
    "gte": _ordered(operator.ge),
    "lt": _ordered(operator.lt),
    "lte": _ordered(operator.le),
    "in": _member,
    "nin": lambda left, right: not _member(left, right),
}


def matches(condition: Filter, attributes: Mapping[str, Any]) -> bool:
    """Whether a file's attributes satisfy the filter (a missing key never matches)."""
    if isinstance(condition, CompoundFilter):
        results = (matches(part, attributes) for part in condition.filters)
        return all(results) if condition.type == "and" else any(results)
    assert isinstance(condition, ComparisonFilter)
    if condition.key not in attributes:
        return False
    return _COMPARISONS[condition.type](attributes[condition.key], condition.value)
