"""The internal client: model calls Portway makes itself, through the same door as HTTP.

Contract: every model call Portway makes on its own (a run's turns, the routing
classifier, the embedders of retrieval and the semantic cache) is a ``CallContext`` run
through the composed ``Pipeline``, attributed to a principal: the caller it works for
when there is one (a run's creator, the key whose call is being classified, the key
searching a vector store), else the system principal (``system_principal`` in the
settings). So each such call meets that principal's rate limits and budget holds, is
routed with retries, fallbacks and breakers, and leaves a ledger row whose ``endpoint``
says what it was for. Nothing outside the router calls a provider.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

from portway.pipeline.base import CallContext, ModelRequest, ModelResult
from portway.pipeline.service import Pipeline
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict, ChatCompletionRequest
from portway.protocol.embeddings import EmbeddingRequest, EmbeddingResponseDict
from portway.security.principal import Principal
from portway.security.system import SystemPrincipal


def internal_request_id() -> str:
    return "internal_" + secrets.token_hex(8)


def for_operator_model(principal: Principal) -> Principal:
    """The caller as it pays for a model the operator chose for a job (the classifier, the
    retrieval embedder): its limits and budgets apply, its list of models does not."""
    return replace(principal, allowed_models=None)


class ModelClient:
    """Portway's own model calls, each under the caller it serves or the system principal."""

    def __init__(self, pipeline: Pipeline, system: SystemPrincipal) -> None:
        self._pipeline = pipeline
        self._system = system

    def context(
        self,
        request: ModelRequest,
        *,
        principal: Principal | None = None,
        request_id: str | None = None,
        endpoint: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> CallContext:
        """A call's context; ``principal`` None runs it as the system principal."""
        return CallContext(
            request_id=request_id or internal_request_id(),
            principal=principal if principal is not None else self._system.principal,
            request=request,
            request_headers=headers or {},
            endpoint=endpoint,
        )

    async def complete(
        self,
        request: ChatCompletionRequest,
        *,
        principal: Principal | None = None,
        request_id: str | None = None,
        endpoint: str = "",
    ) -> ChatCompletionDict:
        ctx = self.context(request, principal=principal, request_id=request_id, endpoint=endpoint)
        return await self._pipeline.complete(ctx)

    async def call(self, ctx: CallContext) -> ModelResult:
        """A whole call of any operation, from a context the caller built (``context``)
        and may have adjusted (``price_factor``)."""
        if ctx.operation == "embed":
            return await self._pipeline.embed(ctx)
        if ctx.operation == "completion":
            return await self._pipeline.completion(ctx)
        return await self._pipeline.complete(ctx)

    def stream(self, ctx: CallContext) -> AsyncIterator[ChatCompletionChunkDict]:
        """A streamed chat call; the caller keeps ``ctx`` to read its usage afterwards."""
        return self._pipeline.stream(ctx)

    async def ask(self, request: ChatCompletionRequest, parent: CallContext) -> ChatCompletionDict:
        """A chat call made for another call (the routing classifier): billed to and limited
        as that call's caller, who may use the model the operator chose for the job."""
        return await self.complete(
            request,
            principal=for_operator_model(parent.principal),
            request_id=parent.request_id,
            endpoint="classifier",
        )

    async def embed(
        self,
        request: EmbeddingRequest,
        *,
        principal: Principal | None = None,
        request_id: str | None = None,
        endpoint: str = "",
    ) -> EmbeddingResponseDict:
        """Embeddings with the operator's embedding model, for ``principal`` (None: the
        system principal)."""
        if principal is not None:
            principal = for_operator_model(principal)
        ctx = self.context(request, principal=principal, request_id=request_id, endpoint=endpoint)
        return await self._pipeline.embed(ctx)
