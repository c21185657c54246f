"""The model host: one process that runs the in-process models for every worker.

With ``--workers N`` a model loaded inside each worker would take N times its memory and
N copies would compete for the same cores. The supervisor starts this process once; it
loads the deployments whose provider runs in process (``Provider.hosted``: the local
llama.cpp models) and serves them on a private loopback port, speaking OpenAI's wire
protocol (chat completions, text completions, embeddings; whole and streamed). The
workers reach it through the OpenAI-compatible provider (``processes.hosted`` rewrites
their settings), so every call still passes through a worker's pipeline (limits,
budget, ledger, routing) exactly once: this host is an inference server, like a vLLM or
llama.cpp server, and the one place outside the router that calls those providers.

A request must carry the bearer token the supervisor generated (other local users cannot
use the models). A chat request with ``continue_final_message`` (what the OpenAI provider
sends to resume a cut stream) continues its final assistant message through the hosted
provider's own ``continuation``; the text that continuation repeats is dropped here.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portway.api.render import EventStreamResponse, JSONResponse, error_response, internal_error
from portway.api.wire import parse_json, parse_model
from portway.config import Settings
from portway.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    PortwayError,
    UpstreamError,
)
from portway.protocol.chat import (
    AssistantMessage,
    ChatCompletionChunkDict,
    ChatCompletionRequest,
    message_text,
)
from portway.protocol.completions import CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest
from portway.providers.base import Provider
from portway.providers.registry import ProviderRegistry

logger = logging.getLogger(__name__)

HEALTH_PATH = "/health"
# What the supervisor reads from ``HEALTH_PATH``: each hosted deployment's abilities.
OUTPUT_CAP = "default_output_cap"


def hosted_indexes(settings: Settings, registry: ProviderRegistry) -> list[int]:
    """Positions in ``settings.models`` of the deployments the model host runs."""
    return [
        index for index, model in enumerate(settings.models) if registry.get(model.provider).hosted
    ]


def host_model_id(index: int) -> str:
    """The model id a worker sends for ``settings.models[index]``."""
    return f"models-{index}"


class ModelHost:
    """The hosted providers behind OpenAI's routes, for holders of ``token``."""

    def __init__(self, providers: dict[str, Provider], token: str) -> None:
        self._providers = providers
        self._token = f"Bearer {token}".encode()

    def app(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            for provider in self._providers.values():
                await provider.start()
            try:
                yield
            finally:
                for provider in self._providers.values():
                    await provider.close()

        routes = [
            Route(HEALTH_PATH, self._guarded(self.health), methods=["GET"]),
            Route("/v1/chat/completions", self._guarded(self.chat), methods=["POST"]),
            Route("/v1/completions", self._guarded(self.completions), methods=["POST"]),
            Route("/v1/embeddings", self._guarded(self.embeddings), methods=["POST"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan)

    def _guarded(
        self, endpoint: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, self._token):
                return error_response(AuthenticationError("Invalid model host token."))
            try:
                return await endpoint(request)
            except PortwayError as error:
                return error_response(error)
            except Exception:
                logger.exception("the model host failed a request")
                return error_response(internal_error())

        return guarded

    def _provider(self, model: str) -> Provider:
        provider = self._providers.get(model)
        if provider is None:
            raise ModelNotFoundError(model)
        return provider

    async def health(self, _: Request) -> Response:
        """Each hosted deployment's capabilities (answered once every model loaded)."""
        return JSONResponse(
            {
                model: {
                    **dataclasses.asdict(provider.capabilities),
                    OUTPUT_CAP: provider.default_output_cap,
                }
                for model, provider in self._providers.items()
            }
        )

    async def chat(self, request: Request) -> Response:
        body = parse_model(parse_json(await request.body()), ChatCompletionRequest)
        provider = self._provider(body.model)
        body, echo = _continued(provider, body)
        if not body.stream:
            completion = await provider.chat(body)
            if echo:
                for choice in completion["choices"]:
                    message: Any = choice["message"]
                    message["content"] = (message.get("content") or "").removeprefix(echo)
            return JSONResponse(completion)
        chunks = provider.stream(body)
        return await _event_stream(_without_echo(chunks, echo) if echo else chunks)

    async def completions(self, request: Request) -> Response:
        body = parse_model(parse_json(await request.body()), CompletionRequest)
        provider = self._provider(body.model)
        if not body.stream:
            return JSONResponse(await provider.complete_text(body))
        return await _event_stream(provider.stream_text(body))

    async def embeddings(self, request: Request) -> Response:
        body = parse_model(parse_json(await request.body()), EmbeddingRequest)
        return JSONResponse(await self._provider(body.model).embed(body))


def _continued(provider: Provider, request: ChatCompletionRequest) -> tuple[Any, str]:
    """The request the provider runs, and the text its answer repeats (to drop)."""
    extra = request.model_extra or {}
    if not extra.get("continue_final_message"):
        return request, ""
    last = request.messages[-1]
    if not isinstance(last, AssistantMessage):
        raise InvalidRequestError(
            "continue_final_message needs a final assistant message.", param="messages"
        )
    base = request.model_copy(update={"messages": request.messages[:-1]})
    continuation = provider.continuation(base, message_text(last.content))
    return continuation.request, continuation.echo


async def _without_echo(
    chunks: AsyncIterator[ChatCompletionChunkDict], echo: str
) -> AsyncIterator[ChatCompletionChunkDict]:
    """The stream less the ``echo`` its first content deltas repeat."""
    async for chunk in chunks:
        for choice in chunk.get("choices") or ():
            delta: Any = choice.get("delta") or {}
            content = delta.get("content")
            if echo and content:
                kept = 0
                while kept < min(len(echo), len(content)) and echo[kept] == content[kept]:
                    kept += 1
                echo = echo[kept:] if kept == len(content) else ""
                delta["content"] = content[kept:]
        yield chunk


async def _event_stream(chunks: AsyncIterator[Any]) -> Response:
    """SSE of ``chunks``; a failure before the first one is still a JSON error."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise UpstreamError("The model produced an empty stream.") from None
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise
    return EventStreamResponse(first, chunks)


def run_model_host(settings: Settings, listener: socket.socket, token: str) -> bool:
    """Load the hosted deployments and serve them on ``listener`` until SIGTERM."""
    registry = ProviderRegistry()
    providers = {
        host_model_id(index): registry.build(settings.models[index], index)
        for index in hosted_indexes(settings, registry)
    }
    config = uvicorn.Config(
        ModelHost(providers, token).app(),
        log_level=settings.log_level,
        access_log=False,
        **({"log_config": None} if settings.log_format == "json" else {}),
        loop="uvloop",
        http="httptools",
        # The workers drain first; what still runs here then is cut by their own exit.
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[listener])
    return server.started
