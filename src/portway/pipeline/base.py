"""The request pipeline's building blocks: the per-call context, stages and their composition.

Contract: the pipeline serves every model operation through the same stage objects. An
operation is a request/result type (``chat``: ``ChatCompletionRequest`` answered whole or
streamed; ``embed``: ``EmbeddingRequest`` answered whole; ``completion``: the legacy
``CompletionRequest`` answered whole or streamed; ``response``: a ``/v1/responses`` create
forwarded to a native upstream, ``NativeResponseRequest`` answered whole or as Response
stream events), not a stack of its own. A
``Stage`` declares the operations it handles (``operations``); ``compose`` folds, per
operation, the stages that handle it. For a call, a stage either passes it on
(``call_next``), answers it itself (a cache hit) or raises a ``PortwayError``. Stages are
composed once at start-up; nothing is looked up per request. A stream stage (for each
streamed operation, ``STREAMED``) wraps the async iterator it gets from ``call_next``;
its ``finally`` runs when the stream ends, fails or is closed because the client went
away. A call's prompt is counted at most once, on first use (``CallContext.prompt_tokens``),
by the one counter the composition root gave the pipeline
(``accounting.estimate.UsageEstimator.count_prompt``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from portway.observability.trace import RequestTrace, current_trace
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict, ChatCompletionRequest
from portway.protocol.completions import CompletionDict, CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest, EmbeddingResponseDict
from portway.protocol.native_responses import NativeResponseRequest
from portway.security.principal import Principal

Operation = Literal["chat", "embed", "completion", "response"]
OPERATIONS: tuple[Operation, ...] = ("chat", "embed", "completion", "response")
# The operations that may also be answered as a stream of chunks.
STREAMED: tuple[Operation, ...] = ("chat", "completion", "response")
# What a call asks and answers (whole, or chunk by chunk), per operation; a native
# response is the upstream's Response object, streamed as its events.
ModelRequest = ChatCompletionRequest | EmbeddingRequest | CompletionRequest | NativeResponseRequest
ModelResult = ChatCompletionDict | EmbeddingResponseDict | CompletionDict | dict[str, Any]
ModelChunk = ChatCompletionChunkDict | CompletionDict | dict[str, Any]
# The ledger's ``endpoint`` of a call made through an HTTP endpoint, per operation.
ENDPOINTS: Mapping[Operation, str] = {
    "chat": "chat.completions",
    "embed": "embeddings",
    "completion": "completions",
    "response": "responses",
}
_OPERATION_OF: Mapping[type, Operation] = {
    ChatCompletionRequest: "chat",
    EmbeddingRequest: "embed",
    CompletionRequest: "completion",
    NativeResponseRequest: "response",
}

# Told the served call's (prompt, completion) tokens once the usage recorder knows them
# (from the provider's usage, else counted): stages that admitted the call on an
# estimate and could not true it up themselves (no usage reported) register one.
UsageListener = Callable[[int, int], Awaitable[None]]
# Counts a call's prompt tokens before it is routed (its model may be a virtual one).
PromptCounter = Callable[["CallContext"], Awaitable[int]]


def operation_of(request: ModelRequest) -> Operation:
    return _OPERATION_OF[type(request)]


async def _no_counter(ctx: CallContext) -> int:
    raise RuntimeError("this call did not enter through a Pipeline: it has no prompt counter")


@dataclass(slots=True)
class CallContext:
    """Everything one model call carries through the stages."""

    request_id: str
    principal: Principal
    request: ModelRequest
    request_headers: Mapping[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.perf_counter)
    model: str = ""
    # The ledger's ``endpoint``: the HTTP endpoint, or what an internal call is for.
    endpoint: str = ""
    operation: Operation = field(init=False, default="chat")  # from the request's type
    deployment: str | None = None
    attempts: int = 0
    first_token_at: float | None = None
    usage: dict[str, Any] | None = None
    cache_status: str | None = None
    # The context strategy the call was fitted under (None: off), for the ledger.
    context_strategy: str | None = None
    # What fitting the prompt cost (a summarizer's calls), recorded in this call's row too.
    context_cost_nanos: int = 0
    # The stored conversation, thread or response a summary made for this call belongs to.
    context_chain: str | None = None
    # The one prompt counter (the pipeline binds it as the call enters).
    count_prompt: PromptCounter = field(default=_no_counter, repr=False)
    _prompt_tokens: int | None = field(default=None, init=False, repr=False)  # not counted yet
    # Accounting: reservations are settled by the ledger stage at the real cost.
    budget_reservations: tuple[Any, ...] = ()
    priority: int = 0
    cost_nanos: int = 0
    # The ledger records the call's cost times this (a batch line's discount).
    price_factor: float = 1.0
    usage_listeners: list[UsageListener] = field(default_factory=list)
    # A stored conversation's pseudonym map (guardrails): continued from the one saved
    # under ``pseudonyms_from`` (a thread, a conversation, the previous response) and
    # saved under ``pseudonyms_to``. Set by the engines only, never from client input.
    pseudonyms_from: str | None = None
    pseudonyms_to: str | None = None
    # The HTTP request this call serves (its spans and records), if any; ``call_span`` is
    # this call's span in it (see ``observability.trace``).
    trace: RequestTrace | None = field(default_factory=current_trace, repr=False)
    call_span: int = -1
    # "guardrail:action" for every guardrail decision (names only, never the text): audit.
    guardrails_fired: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.model:
            self.model = self.request.model
        self.operation = operation_of(self.request)
        if not self.endpoint:
            self.endpoint = ENDPOINTS[self.operation]

    async def prompt_tokens(self) -> int:
        """The prompt's size in tokens: counted on first use, then kept for every stage."""
        if self._prompt_tokens is None:
            self._prompt_tokens = await self.count_prompt(self)
        return self._prompt_tokens

    def prompt_counted(self) -> bool:
        return self._prompt_tokens is not None

    def replace_request(self, request: ModelRequest, prompt_tokens: int | None = None) -> None:
        """A stage rewrote the prompt: later stages see it and its count (``None``: counted
        again on next use, never the old request's)."""
        self.request = request
        self._prompt_tokens = prompt_tokens


# A whole call's result is the type of its operation's (``ctx.operation``).
CompleteHandler = Callable[[CallContext], Awaitable[ModelResult]]
StreamHandler = Callable[[CallContext], AsyncIterator[ModelChunk]]


class Stage:
    """A pass-through stage; subclasses override what they need.

    ``complete`` answers a whole call of any operation it handles (the result type is the
    operation's); ``stream`` answers a streamed call (chat or completion chunks).
    """

    operations: ClassVar[frozenset[Operation]] = frozenset(OPERATIONS)
    # Its name in traces (empty: the class name, see ``span_name``).
    span_name: ClassVar[str] = ""

    @property
    def active(self) -> bool:
        """False when configured off: ``compose`` leaves the stage out (no hop, no span)."""
        return True

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        return await call_next(ctx)

    def stream(self, ctx: CallContext, call_next: StreamHandler) -> AsyncIterator[ModelChunk]:
        return call_next(ctx)


class Terminal(Stage):
    """The innermost stage: it answers the call (the router)."""

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        raise NotImplementedError

    def stream(self, ctx: CallContext, call_next: StreamHandler) -> AsyncIterator[ModelChunk]:
        raise NotImplementedError


async def _unreachable_complete(ctx: CallContext) -> ModelResult:
    raise RuntimeError("the terminal stage must not call call_next")


def _unreachable_stream(ctx: CallContext) -> AsyncIterator[ModelChunk]:
    raise RuntimeError("the terminal stage must not call call_next")


@dataclass(frozen=True, slots=True)
class Handlers:
    """The composed pipeline: one whole-call handler per operation, one stream handler per
    streamed operation."""

    complete: Mapping[Operation, CompleteHandler]
    stream: Mapping[Operation, StreamHandler]


def compose(stages: Sequence[Stage]) -> Handlers:
    """Fold stages (outermost first, terminal last) into handlers, per operation the
    active stages that handle it."""
    stages = [stage for stage in stages if stage.active]
    complete: dict[Operation, CompleteHandler] = {}
    for operation in OPERATIONS:
        handler: CompleteHandler = _unreachable_complete
        for stage in reversed(stages):
            if operation in stage.operations:
                handler = _bind_complete(stage, handler)
        complete[operation] = handler
    stream: dict[Operation, StreamHandler] = {}
    for operation in STREAMED:
        streamer: StreamHandler = _unreachable_stream
        for stage in reversed(stages):
            if operation in stage.operations:
                streamer = _bind_stream(stage, streamer)
        stream[operation] = streamer
    return Handlers(complete, stream)


def span_name(stage: Stage) -> str:
    """A stage's name in traces: its ``span_name``, else its class name in lower case."""
    if stage.span_name:
        return stage.span_name
    return type(stage).__name__.removesuffix("Stage").lower()


def _bind_complete(stage: Stage, call_next: CompleteHandler) -> CompleteHandler:
    name = span_name(stage)

    async def handler(ctx: CallContext) -> ModelResult:
        trace = ctx.trace
        if trace is None:
            return await stage.complete(ctx, call_next)
        span = trace.open(name, "stage")
        try:
            result = await stage.complete(ctx, call_next)
        except BaseException as error:
            trace.close(span, error)
            raise
        trace.close(span)
        return result

    return handler


def _bind_stream(stage: Stage, call_next: StreamHandler) -> StreamHandler:
    def handler(ctx: CallContext) -> AsyncIterator[ModelChunk]:
        return stage.stream(ctx, call_next)

    return handler
