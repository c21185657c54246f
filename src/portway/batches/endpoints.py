"""What each line's ``url`` is served by: a registered ``LineHandler`` per endpoint.

A handler turns a line's ``body`` into the endpoint's request (a 400 when it is not
one) and answers it through the one door (``ModelClient``) for the batch's creator:
its limits, budgets, routes and ledger row (``endpoint`` ``batches``), at the batch's
queue priority and price factor. ``/v1/responses`` is registered as unserved until
the Responses API registers its handler: each of its lines gets an error of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from portway.api.wire import parse_model
from portway.errors import InvalidRequestError
from portway.limits.stage import PRIORITY_HEADER
from portway.pipeline.base import ModelRequest, ModelResult
from portway.pipeline.client import ModelClient
from portway.protocol.chat import ChatCompletionRequest
from portway.protocol.embeddings import EmbeddingRequest
from portway.security.principal import Principal

LEDGER_ENDPOINT = "batches"


@dataclass(frozen=True, slots=True)
class LineCall:
    """Who a line's call is for and on what terms."""

    principal: Principal
    request_id: str
    priority: int
    price_factor: float


class UnservedEndpointError(Exception):
    """The endpoint is known but not served here: the line fails without a model call."""


class LineHandler(Protocol):
    async def __call__(self, body: dict[str, Any], call: LineCall) -> ModelResult: ...


class ModelLines:
    """Lines answered by one model call of the request type ``wire``."""

    def __init__(self, models: ModelClient, wire: type[ChatCompletionRequest | EmbeddingRequest]):
        self._models = models
        self._wire = wire

    async def __call__(self, body: dict[str, Any], call: LineCall) -> ModelResult:
        if body.get("stream"):
            raise InvalidRequestError(
                "Streaming is not supported in batches: remove 'stream' from the body.",
                param="stream",
            )
        request: ModelRequest = parse_model(body, self._wire)
        ctx = self._models.context(
            request,
            principal=call.principal,
            request_id=call.request_id,
            endpoint=LEDGER_ENDPOINT,
            headers={PRIORITY_HEADER: str(call.priority)},
        )
        ctx.price_factor = call.price_factor
        return await self._models.call(ctx)


class Unserved:
    def __init__(self, reason: str) -> None:
        self._reason = reason

    async def __call__(self, body: dict[str, Any], call: LineCall) -> ModelResult:
        raise UnservedEndpointError(self._reason)


def default_handlers(models: ModelClient) -> dict[str, LineHandler]:
    return {
        "/v1/chat/completions": ModelLines(models, ChatCompletionRequest),
        "/v1/embeddings": ModelLines(models, EmbeddingRequest),
        "/v1/responses": Unserved(
            "Portway does not serve /v1/responses in batches yet; "
            "send these requests to /v1/responses directly."
        ),
    }


def supported(handlers: Mapping[str, LineHandler]) -> str:
    return ", ".join(f"'{url}'" for url in sorted(handlers))
