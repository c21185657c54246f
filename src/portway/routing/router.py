"""The router: the terminal pipeline stage that picks a deployment and calls its provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from portway.errors import InvalidRequestError, ModelNotFoundError
from portway.limits.gate import DeploymentGate
from portway.pipeline.base import CallContext, CompleteHandler, StreamHandler, Terminal
from portway.protocol.chat import (
    ChatCompletionChunkDict,
    ChatCompletionDict,
    ChatCompletionRequest,
    ResponseFormatJSONSchema,
)
from portway.routing.catalog import Deployment, ModelCatalog


def check_capabilities(deployment: Deployment, request: ChatCompletionRequest) -> None:
    """Reject requests the deployment cannot honour, before any upstream call."""
    capabilities = deployment.provider.capabilities
    if not capabilities.chat:
        raise InvalidRequestError(
            f"The model `{deployment.name}` is an embedding model; it does not chat.",
            param="model",
            code="model_not_supported",
        )
    if request.tools and request.tool_choice != "none" and not capabilities.tools:
        raise InvalidRequestError(
            f"The model `{deployment.name}` does not support tools.", param="tools"
        )
    if isinstance(request.response_format, ResponseFormatJSONSchema) and not (
        capabilities.json_schema
    ):
        raise InvalidRequestError(
            f"The model `{deployment.name}` does not support `json_schema` response formats.",
            param="response_format",
        )
    if request.logprobs and not capabilities.logprobs:
        raise InvalidRequestError(
            f"The model `{deployment.name}` does not support logprobs.", param="logprobs"
        )


class Router(Terminal):
    """Send each call to the first deployment of its model group."""

    def __init__(self, catalog: ModelCatalog, gate: DeploymentGate | None = None) -> None:
        self._catalog = catalog
        self._gate = gate

    def select(self, ctx: CallContext) -> Deployment:
        if not ctx.principal.may_use(ctx.model):
            raise ModelNotFoundError(ctx.model)
        deployment = self._catalog.group(ctx.model)[0]
        check_capabilities(deployment, ctx.request)
        ctx.deployment = deployment.id
        ctx.attempts += 1
        ctx.response_headers["x-portway-deployment"] = deployment.id
        return deployment

    async def complete(self, ctx: CallContext, call_next: CompleteHandler) -> ChatCompletionDict:
        deployment = self.select(ctx)
        if self._gate is not None:  # deployment RPM/TPM: may wait in its priority queue
            await self._gate.acquire(deployment.id, ctx.prompt_tokens_estimate or 0, ctx.priority)
        completion = await deployment.provider.chat(ctx.request)
        completion["model"] = ctx.model
        ctx.usage = completion.get("usage")  # type: ignore[assignment]
        return completion

    async def stream(  # type: ignore[override]
        self, ctx: CallContext, call_next: StreamHandler
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        deployment = self.select(ctx)
        if self._gate is not None:
            await self._gate.acquire(deployment.id, ctx.prompt_tokens_estimate or 0, ctx.priority)
        async with aclosing(deployment.provider.stream(ctx.request)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                chunk["model"] = ctx.model
                usage = chunk.get("usage")
                if usage:
                    ctx.usage = usage  # type: ignore[assignment]
                yield chunk
