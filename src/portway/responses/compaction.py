"""Compaction in the Responses API: ``context_management``, ``/v1/responses/compact`` and
the sealed ``compaction`` items clients send back.

Contract:
- A ``compaction`` item stands for everything before it: when a model's context is built,
  the latest one (in the chain's items or the input) replaces the items before it but
  for system and developer messages, by the summary and the newer chat messages sealed in
  it (``context.sealing``). Every compaction item in a request's input is verified: an
  altered one, or one sealed for another tenant, is a 400 ``invalid_encrypted_content``.
  So a client can compact, send the item back with ``store: false`` and nothing stored,
  and the model still sees the summary.
- ``context_management: [{type: compaction, compact_threshold: N}]`` compacts a context
  over N tokens (the model's tokenizer; N unset: the model's window) with the context
  stage's ``summarize`` (``context.compactor``: cached by prefix, incremental), and the
  response's output starts with the ``compaction`` item.
- ``compact`` (``POST /v1/responses/compact``) summarizes every turn but the newest user
  turn on demand and answers OpenAI's ``response.compaction`` object whose output is the
  ``compaction`` item, with the summarizer's usage.
The summarizer's calls go through the pipeline as the caller (endpoint
``context.summarize``, the response's id as request id).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from portway.assistants.context import ContextBuilder
from portway.assistants.ids import new_id
from portway.config import ContextConfig
from portway.context.compactor import CompactionSpec, Compactor, Costs
from portway.context.sealing import CompactionSealer, Sealed
from portway.context.turns import HEAD_ROLES, split
from portway.errors import ContextLengthExceededError, InvalidRequestError
from portway.pipeline.client import ModelClient
from portway.protocol.chat import ChatCompletionRequest
from portway.protocol.responses import ContextManagement
from portway.responses.items import SUMMARY_ITEM
from portway.responses.render import usage_object
from portway.security.principal import Principal

COMPACTION = "compaction"


@dataclass(frozen=True, slots=True)
class Compacted:
    messages: list[dict[str, Any]]  # the chat messages to send
    item: dict[str, Any]  # the ``compaction`` output item
    input_tokens: int
    output_tokens: int


def threshold(entries: Sequence[ContextManagement] | None) -> tuple[bool, int | None]:
    """Whether compaction was asked for, and its threshold (None: the model's window)."""
    wanted = False
    limit: int | None = None
    for index, entry in enumerate(entries or ()):
        if entry.type != COMPACTION:
            raise InvalidRequestError(
                f"Unsupported context management type '{entry.type}'; only 'compaction' is.",
                param=f"context_management[{index}].type",
                code="invalid_value",
            )
        wanted = True
        if entry.compact_threshold is not None:
            limit = entry.compact_threshold
    return wanted, limit


class ResponseCompaction:
    def __init__(
        self,
        compactor: Compactor,
        sealer: CompactionSealer,
        context: ContextBuilder,
        models: ModelClient,
        groups: Mapping[str, ContextConfig],
    ) -> None:
        self._compactor = compactor
        self._sealer = sealer
        self._context = context
        self._models = models
        self._groups = dict(groups)

    def verify(self, principal: Principal, items: Sequence[dict[str, Any]]) -> None:
        """Every compaction item of a request's input opens (else a 400)."""
        for index, item in enumerate(items):
            if item.get("type") == COMPACTION:
                self._sealer.open(item["encrypted_content"], principal.tenant, f"input[{index}]")

    def expand(self, principal: Principal, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``items`` with the latest compaction item opened in place of what it stands for."""
        last = max(
            (i for i, item in enumerate(items) if item.get("type") == COMPACTION), default=-1
        )
        if last < 0:
            return list(items)
        sealed = self._sealer.open(items[last]["encrypted_content"], principal.tenant)
        kept = [
            item
            for item in items[:last]
            if item.get("type") == "message" and item.get("role") in HEAD_ROLES
        ]
        summary = {"type": SUMMARY_ITEM, "summary": sealed.summary, "messages": sealed.messages}
        return [*kept, summary, *items[last + 1 :]]

    async def maybe_compact(
        self,
        principal: Principal,
        request: Any,
        chat: ChatCompletionRequest,
        response_id: str,
    ) -> Compacted | None:
        """The context compacted, when ``context_management`` asks and it is over the
        threshold (None: sent as it is)."""
        wanted, limit = threshold(request.context_management)
        if not wanted:
            return None
        window = self._context.window_limit(chat.model, request.max_output_tokens)
        budget = min(v for v in (limit, window) if v is not None) if (limit or window) else None
        if budget is None:
            return None
        tokens = await self._context.count(chat.model, chat)
        if tokens <= budget:
            return None
        return await self.compact_chat(principal, chat, budget, response_id, everything=False)

    async def compact_chat(
        self,
        principal: Principal,
        chat: ChatCompletionRequest,
        budget: int,
        response_id: str,
        *,
        everything: bool,
    ) -> Compacted:
        model = chat.model
        counter = await self._context.counter(model)
        costs = [counter.message_cost(message) for message in chat.messages]
        fixed = counter.count_request(chat) - sum(costs)
        config = self._groups.get(model, ContextConfig())
        spec = CompactionSpec(
            model=config.summarizer_model or model,
            max_tokens=config.summary_max_tokens,
            chain=response_id,
            everything=everything,
        )
        ctx = self._models.context(
            chat, principal=principal, request_id=response_id, endpoint="responses"
        )
        turns = split(chat.messages)
        result = await self._compactor.compact(
            ctx, chat.messages, turns, Costs((counter,), [costs], [fixed]), budget, spec
        )
        if not result.fits or result.summary is None:
            raise ContextLengthExceededError(
                f"The newest input items do not fit the context window of '{model}' "
                f"({budget} tokens for the input) even with the older ones summarized.",
                param="input",
            )
        newer = [
            message.model_dump(mode="json", exclude_none=True)
            for message in result.messages[result.summary_at + 1 :]
            if message.role not in HEAD_ROLES
        ]
        item = {
            "id": new_id("cmp"),
            "type": COMPACTION,
            "encrypted_content": self._sealer.seal(
                Sealed(result.summary, tuple(newer)), principal.tenant
            ),
        }
        messages = [
            message.model_dump(mode="json", exclude_none=True) for message in result.messages
        ]
        return Compacted(messages, item, result.input_tokens, result.output_tokens)


def compaction_object(compacted: Compacted, response_id: str) -> dict[str, Any]:
    """OpenAI's ``response.compaction`` (``CompactResource``)."""
    return {
        "id": response_id,
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [compacted.item],
        "usage": usage_object(compacted.input_tokens, 0, compacted.output_tokens, 0),
    }
