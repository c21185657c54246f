"""`/v1/responses` forwarded to an upstream with its own Responses API (``responses: native``).

Contract: a create request for a model whose deployments are native is validated as any
other, then forwarded as the client sent it (the upstream's model id swapped in) through
the pipeline's ``response`` operation, so the caller's keys, rate limits, budgets,
routing (retries, fallbacks among native deployments) and ledger apply; the usage
accounted is the Response's. The upstream's Response (or its stream events) is returned
unchanged but for ``model``, which names the public model. Portway stores nothing: such a
response lives upstream, so its later retrieval, deletion and input items are the
upstream's (Portway answers 404 for them), and it cannot be chained by
``previous_response_id`` or a ``conversation`` kept by Portway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from portway.errors import NotFoundError, PortwayError
from portway.pipeline.base import CallContext
from portway.pipeline.client import ModelClient
from portway.protocol.events import ServerSentEvent
from portway.routing.catalog import ModelCatalog


class NativeResponses:
    """Forwards create calls to native upstreams through the internal model client."""

    def __init__(self, models: ModelClient, catalog: ModelCatalog) -> None:
        self._models = models
        self._catalog = catalog

    @property
    def configured(self) -> bool:
        """Whether any deployment forwards to its upstream's own Responses API."""
        return any(d.config.responses == "native" for d in self._catalog.deployments)

    def serves(self, model: str) -> bool:
        """Whether ``model`` is served by its upstream's own Responses API (the group's
        native deployments serve it)."""
        return model in self._catalog and any(
            deployment.config.responses == "native" for deployment in self._catalog.group(model)
        )

    async def create(self, ctx: CallContext) -> dict[str, Any]:
        return await self._models.call(ctx)  # type: ignore[return-value]

    async def stream(self, ctx: CallContext) -> AsyncIterator[ServerSentEvent]:
        """The upstream's events as named server-sent events (``event:`` is the type).

        A failure before the first event is raised (an HTTP error); after it, the stream
        ends with the spec's ``error`` event, numbered after the last event relayed.
        """
        last = -1
        try:
            async with aclosing(self._models.stream_response(ctx)) as events:
                async for event in events:
                    number = event.get("sequence_number")
                    last = number if isinstance(number, int) else last + 1
                    yield ServerSentEvent(event=_type_of(event), data=event)
        except PortwayError as error:
            if last < 0:
                raise
            yield ServerSentEvent(
                event="error",
                data={
                    "type": "error",
                    "code": error.code,
                    "message": error.message,
                    "param": error.param,
                    "sequence_number": last + 1,
                },
            )


def upstream_hint(error: NotFoundError) -> NotFoundError:
    """A missing response's 404, saying where a native response would be found."""
    return NotFoundError(
        f"{error.message} Responses of models served by their upstream's own Responses API "
        "(`responses: native`) are stored by that upstream, not by Portway.",
        param=error.param,
    )


def _type_of(event: Mapping[str, Any]) -> str:
    return str(event.get("type") or "message")
