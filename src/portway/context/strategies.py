"""The strategies that drop turns: which units go first, and the fit they reach.

Contract: a strategy only orders the units it may drop (never the head nor a protected
unit, see ``turns``); ``fit`` drops them in that order until the prompt's count fits the
budget by every tokenizer it is counted with, and keeps the messages' order.
``truncate`` drops the oldest first (keeps the newest turns); ``middle-out`` keeps the
first unit too (the task as first stated) and drops what follows it, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from portway.context.turns import Turns


class DropStrategy(Protocol):
    name: str

    def drop_order(self, turns: Turns) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class Truncate:
    name: str = "truncate"

    def drop_order(self, turns: Turns) -> list[int]:
        return [unit for unit in range(len(turns.units)) if unit not in turns.protected]


@dataclass(frozen=True, slots=True)
class MiddleOut:
    name: str = "middle-out"

    def drop_order(self, turns: Turns) -> list[int]:
        return [unit for unit in range(1, len(turns.units)) if unit not in turns.protected]


DROP_STRATEGIES: dict[str, DropStrategy] = {s.name: s for s in (Truncate(), MiddleOut())}


@dataclass(frozen=True, slots=True)
class Fit:
    """The messages kept (indices, in order) and the prompt's count, by the largest
    tokenizer, once they alone are sent; ``fits`` False when even that is too big."""

    kept: tuple[int, ...]
    tokens: int
    fits: bool


def fit(
    turns: Turns,
    order: Sequence[int],
    costs: Sequence[Sequence[int]],
    fixed: Sequence[int],
    budget: int,
) -> Fit:
    """Drop units in ``order`` until every tokenizer's count fits ``budget``.

    ``costs[c][i]`` is message ``i``'s tokens by tokenizer ``c``; ``fixed[c]`` what the
    prompt costs beyond its messages by that tokenizer."""
    totals = [f + sum(c) for f, c in zip(fixed, costs, strict=True)]
    dropped: set[int] = set()
    for unit in order:
        if max(totals) <= budget:
            break
        dropped.add(unit)
        for c, per_message in enumerate(costs):
            totals[c] -= sum(per_message[i] for i in turns.units[unit])
    gone = {i for unit in dropped for i in turns.units[unit]}
    count = len(costs[0]) if costs else 0
    kept = tuple(i for i in range(count) if i not in gone)
    tokens = max(totals)
    return Fit(kept, tokens, tokens <= budget)
