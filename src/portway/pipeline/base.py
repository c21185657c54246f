"""The request pipeline's building blocks: the per-call context, stages and their composition.

Contract: a ``Stage`` sees every chat call twice over, once for whole completions and
once for streams, and either passes the call on (``call_next``), answers it itself
(a cache hit) or raises a ``PortwayError``. Stages are composed once at start-up into
two closures; nothing is looked up per request. A stream stage wraps the async
iterator it gets from ``call_next``; its ``finally`` runs when the stream ends, fails
or is closed because the client went away.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict, ChatCompletionRequest
from portway.security.principal import Principal

# Told the served call's (prompt, completion) tokens once the usage recorder knows them
# (from the provider's usage, else counted): stages that admitted the call on an
# estimate and could not true it up themselves (no usage reported) register one.
UsageListener = Callable[[int, int], Awaitable[None]]


@dataclass(slots=True)
class CallContext:
    """Everything one chat call carries through the stages."""

    request_id: str
    principal: Principal
    request: ChatCompletionRequest
    request_headers: Mapping[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.perf_counter)
    model: str = ""
    deployment: str | None = None
    attempts: int = 0
    first_token_at: float | None = None
    usage: dict[str, Any] | None = None
    cache_status: str | None = None
    # Accounting: the prompt estimate is computed once by the first stage that needs it;
    # reservations are settled by the ledger stage at the real cost.
    prompt_tokens_estimate: int | None = None
    budget_reservations: tuple[Any, ...] = ()
    priority: int = 0
    cost_nanos: int = 0
    usage_listeners: list[UsageListener] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.model:
            self.model = self.request.model


CompleteHandler = Callable[[CallContext], Awaitable[ChatCompletionDict]]
StreamHandler = Callable[[CallContext], AsyncIterator[ChatCompletionChunkDict]]


class Stage:
    """A pass-through stage; subclasses override what they need."""

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ChatCompletionDict:
        return await call_next(ctx)

    def stream(
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        return call_next(ctx)


class Terminal(Stage):
    """The innermost stage: it answers the call (the router)."""

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ChatCompletionDict:
        raise NotImplementedError

    def stream(
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        raise NotImplementedError


async def _unreachable_complete(ctx: CallContext) -> ChatCompletionDict:
    raise RuntimeError("the terminal stage must not call call_next")


def _unreachable_stream(ctx: CallContext) -> AsyncIterator[ChatCompletionChunkDict]:
    raise RuntimeError("the terminal stage must not call call_next")


def compose(stages: Sequence[Stage]) -> tuple[CompleteHandler, StreamHandler]:
    """Fold stages (outermost first, terminal last) into one handler per call kind."""
    complete: CompleteHandler = _unreachable_complete
    stream: StreamHandler = _unreachable_stream
    for stage in reversed(stages):
        complete = _bind_complete(stage, complete)
        stream = _bind_stream(stage, stream)
    return complete, stream


def _bind_complete(stage: Stage, call_next: CompleteHandler) -> CompleteHandler:
    async def handler(ctx: CallContext) -> ChatCompletionDict:
        return await stage.complete(ctx, call_next)

    return handler


def _bind_stream(stage: Stage, call_next: StreamHandler) -> StreamHandler:
    def handler(ctx: CallContext) -> AsyncIterator[ChatCompletionChunkDict]:
        return stage.stream(ctx, call_next)

    return handler
