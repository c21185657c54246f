"""What each line's ``url`` is served by: a registered ``LineHandler`` per endpoint.

A handler turns a line's ``body`` into the endpoint's request (a 400 when it is not
one) and answers it through the one door (``ModelClient``) for the batch's creator:
its limits, budgets, routes and ledger row (``endpoint`` ``batches``), at the batch's
queue priority and price factor. Chat, text completion and embedding lines are one
model call each; ``/v1/responses`` lines are served by the Responses
API's handler (``responses.batch_lines``), registered where both are built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from portway.api.completions import check_completion
from portway.api.wire import parse_model
from portway.errors import InvalidRequestError
from portway.limits.stage import PRIORITY_HEADER
from portway.pipeline.base import ModelRequest, ModelResult
from portway.pipeline.client import ModelClient
from portway.protocol.chat import ChatCompletionRequest
from portway.protocol.completions import CompletionRequest
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


class LineHandler(Protocol):
    """A line's body in, the endpoint's answer (the output line's ``body``) out."""

    async def __call__(self, body: dict[str, Any], call: LineCall) -> Mapping[str, Any]: ...


class ModelLines:
    """Lines answered by one model call of the request type ``wire``."""

    def __init__(
        self,
        models: ModelClient,
        wire: type[ModelRequest],
        check: Callable[[Any], None] | None = None,
    ) -> None:
        self._models = models
        self._wire = wire
        self._check = check  # the endpoint's own checks across parameters

    async def __call__(self, body: dict[str, Any], call: LineCall) -> ModelResult:
        if body.get("stream"):
            raise InvalidRequestError(
                "Streaming is not supported in batches: remove 'stream' from the body.",
                param="stream",
            )
        request: ModelRequest = parse_model(body, self._wire)
        if self._check is not None:
            self._check(request)
        ctx = self._models.context(
            request,
            principal=call.principal,
            request_id=call.request_id,
            endpoint=LEDGER_ENDPOINT,
            headers={PRIORITY_HEADER: str(call.priority)},
        )
        ctx.price_factor = call.price_factor
        return await self._models.call(ctx)


def default_handlers(models: ModelClient) -> dict[str, LineHandler]:
    return {
        "/v1/chat/completions": ModelLines(models, ChatCompletionRequest),
        "/v1/completions": ModelLines(models, CompletionRequest, check_completion),
        "/v1/embeddings": ModelLines(models, EmbeddingRequest),
    }


def supported(handlers: Mapping[str, LineHandler]) -> str:
    return ", ".join(f"'{url}'" for url in sorted(handlers))
