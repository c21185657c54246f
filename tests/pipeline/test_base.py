"""Composing stages: the order they run in, and stages configured off left out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from portway.observability.trace import RequestTrace
from portway.pipeline.base import (
    CallContext,
    CompleteHandler,
    ModelChunk,
    ModelResult,
    Stage,
    StreamHandler,
    Terminal,
    compose,
)
from portway.protocol.chat import ChatCompletionRequest
from portway.security.principal import MASTER


class Recording(Stage):
    """Notes its name on the way in; ``on: False`` is a stage configured off."""

    def __init__(self, name: str, seen: list[str], *, on: bool = True) -> None:
        self.span_name = name
        self._seen = seen
        self._on = on

    @property
    def active(self) -> bool:
        return self._on

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        self._seen.append(self.span_name)
        return await call_next(ctx)

    def stream(self, ctx: CallContext, call_next: StreamHandler) -> AsyncIterator[ModelChunk]:
        self._seen.append(self.span_name)
        return call_next(ctx)


class Answer(Terminal):
    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ModelResult:
        return {"choices": []}  # type: ignore[typeddict-item]

    async def stream(  # type: ignore[override]
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ModelChunk]:
        yield {"choices": []}  # type: ignore[typeddict-item]


def _context(trace: RequestTrace | None = None) -> CallContext:
    request = ChatCompletionRequest.from_wire(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    return CallContext(request_id="req_1", principal=MASTER, request=request, trace=trace)


async def test_a_stage_configured_off_is_never_called_and_leaves_no_span() -> None:
    seen: list[str] = []
    handlers = compose(
        [
            Recording("outer", seen),
            Recording("off", seen, on=False),
            Recording("inner", seen),
            Answer(),
        ]
    )
    trace = RequestTrace({}, "POST", "/v1/chat/completions", None)
    await handlers.complete["chat"](_context(trace))
    assert seen == ["outer", "inner"]
    assert [span.name for span in trace.spans] == ["outer", "inner", "answer"]

    seen.clear()
    chunks = [chunk async for chunk in handlers.stream["chat"](_context())]
    assert chunks == [{"choices": []}]
    assert seen == ["outer", "inner"]
