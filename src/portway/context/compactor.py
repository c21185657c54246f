"""``summarize`` and ``retrieve``: the oldest turns replaced by a summary (and, for
``retrieve``, the older turns most relevant to the new one put back next to it).

Contract: only a prefix of whole units is summarized (never the head, never a protected
unit nor what follows it, see ``turns``). A summary is looked up by the keys of every
prefix (``prefixes``), newest first, in the summaries this process remembers and then in
the database; the longest stored one that lets the rest fit is used as is (no model
call). Otherwise the prompt is cut with slack (the kept turns take
at most half of what is left after the summary's room), so the next turns of the same
conversation reuse the summary instead of writing a new one every turn, and the summary
is brought up to the cut incrementally: the longest stored summary before the cut, plus
the turns after it, folded in batches the summarizer's window holds. Each fold is stored
under its prefix's key (and the stored conversation, thread or response it was made
for). The summary enters the prompt as one system message after the head.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from portway.accounting.tokenizer import ChatTokenCounter
from portway.context.prefixes import prefix_keys, unit_text
from portway.context.recall import Recall
from portway.context.summarizer import Summarizer
from portway.context.turns import Turns
from portway.pipeline.base import CallContext
from portway.protocol.chat import SystemMessage
from portway.store.context import ContextRepository, StoredSummary

SUMMARY_HEADER = "Summary of the earlier conversation:"  # as ``responses.items`` has it
# Room for the summary message's framing beyond the summary's own tokens.
SUMMARY_FRAMING = 24
# The summarizer's prompt beyond the turns it folds (instructions, the previous summary).
SUMMARIZER_OVERHEAD = 160
# Characters per token assumed when one turn alone is too long to fold and is clipped.
CLIP_CHARS_PER_TOKEN = 3
# Summaries this process has read or written, kept in memory (a stored summary never
# changes: its key is the hash of what it covers).
REMEMBERED = 4096


def summary_message(summary: str) -> SystemMessage:
    return SystemMessage(role="system", content=f"{SUMMARY_HEADER}\n{summary}")


@dataclass(frozen=True, slots=True)
class CompactionSpec:
    """What one compaction may do."""

    model: str  # the summarizer
    max_tokens: int  # the longest summary
    retrieve_turns: int = 0  # 0: summarize only
    chain: str | None = None  # the stored conversation/thread/response, when there is one
    # Summarize every turn that may be (on demand), not only as many as the budget needs.
    everything: bool = False


@dataclass(slots=True)
class Compaction:
    """The new prompt's messages (``kept``: indices of the old ones, ``summary`` and the
    ``retrieved`` units' messages inserted at ``insert_at`` in ``kept``)."""

    fits: bool
    messages: list[Any] = field(default_factory=list)
    summary: str | None = None
    summarized: int = 0  # messages the summary stands for
    retrieved: int = 0  # older messages put back
    calls: int = 0  # summarizer calls made
    cost_nanos: int = 0
    input_tokens: int = 0  # the summarizer calls' usage
    output_tokens: int = 0
    # ``messages[summary_at]`` is the summary; what follows it stands for the newer turns.
    summary_at: int = 0


@dataclass(frozen=True, slots=True)
class Costs:
    """Per tokenizer: each message's tokens, and what the prompt costs beyond them."""

    counters: tuple[ChatTokenCounter, ...]
    messages: Sequence[Sequence[int]]
    fixed: Sequence[int]


class Compactor:
    def __init__(
        self,
        repository: ContextRepository,
        summarizer: Summarizer,
        recall: Recall,
        window_of: Callable[[str], int | None],
    ) -> None:
        self._repository = repository
        self._summarizer = summarizer
        self._recall = recall
        self._window_of = window_of
        self._remembered: OrderedDict[str, StoredSummary] = OrderedDict()

    def _remember(self, summary: StoredSummary) -> None:
        self._remembered[summary.key] = summary
        self._remembered.move_to_end(summary.key)
        while len(self._remembered) > REMEMBERED:
            self._remembered.popitem(last=False)

    async def _stored(
        self, tenant: str, keys: Sequence[str], fits: Callable[[int, str], bool]
    ) -> dict[str, StoredSummary]:
        """The stored summaries among ``keys``: from memory when the longest one remembered
        lets the prompt fit (``fits(units, summary)``), else from the database."""
        for k in range(len(keys), 0, -1):
            found = self._remembered.get(keys[k - 1])
            if found is not None:
                if fits(k, found.summary):
                    return {found.key: found}
                break
        stored = await self._repository.summaries(tenant, keys)
        for summary in stored.values():
            self._remember(summary)
        return stored

    async def compact(
        self,
        ctx: CallContext,
        messages: Sequence[Any],
        turns: Turns,
        costs: Costs,
        budget: int,
        settings: CompactionSpec,
    ) -> Compaction:
        units = turns.units
        summarizable = min(turns.protected) if turns.protected else len(units)
        if summarizable == 0:
            return Compaction(fits=False)
        unit_costs = [
            [sum(per_message[i] for i in unit) for unit in units] for per_message in costs.messages
        ]
        totals = [f + sum(c) for f, c in zip(costs.fixed, costs.messages, strict=True)]
        prefix = [[0] for _ in unit_costs]
        for c, per_unit in enumerate(unit_costs):
            for cost in per_unit[:summarizable]:
                prefix[c].append(prefix[c][-1] + cost)

        def rest(k: int) -> int:  # the prompt without units 0..k-1
            return max(total - prefix[c][k] for c, total in enumerate(totals))

        def summary_cost(summary: str) -> int:
            message = summary_message(summary)
            return max(counter.message_cost(message) for counter in costs.counters)

        tenant = ctx.principal.tenant
        keys = prefix_keys(messages, turns, tenant, settings.model, summarizable)

        def fits(k: int, summary: str) -> bool:
            if settings.everything and k < summarizable:
                return False
            return rest(k) + summary_cost(summary) <= budget

        stored = await self._stored(tenant, keys, fits)
        retrieve_room = budget // 4 if settings.retrieve_turns else 0
        result = Compaction(fits=True)
        cut, summary = 0, None
        for k in range(summarizable, 0, -1):
            found = stored.get(keys[k - 1])
            if found is not None and fits(k, found.summary):
                cut, summary = k, found.summary
                break
        limit = budget - settings.max_tokens - SUMMARY_FRAMING - retrieve_room
        if summary is None:
            if rest(summarizable) > limit:
                return Compaction(fits=False)
            # Slack: cut so the kept turns take at most half the room, not just enough.
            cut = next((k for k in range(1, summarizable + 1) if rest(k) <= limit // 2), 0)
            if settings.everything or not cut:
                cut = summarizable
            base = max((k for k in range(1, cut + 1) if keys[k - 1] in stored), default=0)
            previous = stored[keys[base - 1]].summary if base else None
            summary = await self._fold(
                ctx, messages, turns, keys, base, cut, previous, settings, unit_costs, result
            )
        cost_of = [max(per_unit[u] for per_unit in unit_costs) for u in range(len(units))]
        retrieved: list[int] = []
        if settings.retrieve_turns:
            room = budget - rest(cut) - summary_cost(summary)
            retrieved = await self._recall.recall(
                ctx, messages, turns, cut, settings.retrieve_turns, room, cost_of
            )
        dropped = {i for unit in units[:cut] for i in unit}
        inserted = [summary_message(summary)]
        inserted.extend(messages[i] for unit in retrieved for i in units[unit])
        head = set(turns.head)
        out: list[Any] = []
        for index, message in enumerate(messages):
            if index in dropped:
                continue
            if inserted and index not in head:
                result.summary_at = len(out)
                out.extend(inserted)
                inserted = []
            out.append(message)
        if inserted:
            result.summary_at = len(out)
            out.extend(inserted)
        result.messages = out
        result.summary = summary
        result.summarized = len(dropped)
        result.retrieved = sum(len(units[unit]) for unit in retrieved)
        return result

    async def _fold(
        self,
        ctx: CallContext,
        messages: Sequence[Any],
        turns: Turns,
        keys: Sequence[str],
        base: int,
        cut: int,
        previous: str | None,
        settings: CompactionSpec,
        unit_costs: Sequence[Sequence[int]],
        result: Compaction,
    ) -> str:
        """The summary of units ``0..cut-1``: ``previous`` (of ``0..base-1``) and the
        turns after it, folded in batches, each stored under its prefix's key."""
        window = self._window_of(settings.model)
        room = (
            window - settings.max_tokens * 2 - SUMMARIZER_OVERHEAD if window is not None else None
        )
        units = turns.units
        start = base
        summary = previous
        while start < cut:
            end, used = start, 0
            while end < cut:
                cost = max(per_unit[end] for per_unit in unit_costs)
                if room is not None and end > start and used + cost > room:
                    break
                used += cost
                end += 1
            texts = [unit_text(messages, units[u]) for u in range(start, end)]
            transcript = "\n".join(texts)
            if room is not None and used > room:  # one turn alone is too long: clipped
                transcript = transcript[: max(room, 1) * CLIP_CHARS_PER_TOKEN]
            folded = await self._summarizer.fold(
                settings.model, summary, transcript, settings.max_tokens, ctx
            )
            summary = folded.summary
            result.calls += 1
            result.cost_nanos += folded.cost_nanos
            result.input_tokens += folded.input_tokens
            result.output_tokens += folded.output_tokens
            covered = sum(len(unit) for unit in units[:end])
            stored = StoredSummary(keys[end - 1], end, covered, summary)
            await self._repository.save_summary(
                ctx.principal.tenant, settings.model, stored, settings.chain
            )
            self._remember(stored)
            start = end
        assert summary is not None
        return summary
