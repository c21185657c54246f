"""A chat prompt split into what may be dropped as a whole.

Contract: system and developer messages form the ``head`` (always kept). Every other
message belongs to exactly one ``unit``: an assistant message with ``tool_calls`` and the
``tool`` messages answering those calls form one unit (a call is never parted from its
result); every other message is a unit of its own. ``protected`` are the units no
strategy drops: the one holding the latest user message and the newest unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

HEAD_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class Turns:
    head: tuple[int, ...]
    units: tuple[tuple[int, ...], ...]
    protected: frozenset[int]


def _call_ids(message: Any) -> frozenset[str]:
    return frozenset(call.id for call in getattr(message, "tool_calls", None) or ())


def split(messages: Sequence[Any]) -> Turns:
    """The head and the units of ``messages`` (indices into it)."""
    head: list[int] = []
    units: list[list[int]] = []
    open_ids: frozenset[str] = frozenset()  # calls of the unit still collecting results
    latest_user: int | None = None
    for index, message in enumerate(messages):
        role = message.role
        if role in HEAD_ROLES:
            head.append(index)
            continue
        if role in ("tool", "function") and open_ids:
            call_id = getattr(message, "tool_call_id", None)
            if call_id is None or call_id in open_ids:  # legacy ``function`` answers too
                units[-1].append(index)
                continue
        units.append([index])
        open_ids = _call_ids(message) if role == "assistant" else frozenset()
        if role == "user":
            latest_user = len(units) - 1
    protected = {len(units) - 1} if units else set()
    if latest_user is not None:
        protected.add(latest_user)
    return Turns(tuple(head), tuple(tuple(unit) for unit in units), frozenset(protected))
