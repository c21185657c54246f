"""Anthropic's Messages API (`POST {base_url}/v1/messages`) behind the OpenAI chat protocol.

Contract: requests and responses are translated both ways by ``anthropic_translate``
(requests, completions) and ``anthropic_stream`` (stream events); this module is the
transport and the error edge.

Configuration (``models[]``): ``provider: anthropic``, ``model`` is the Anthropic model
id, ``api_key`` is sent as ``x-api-key``, ``headers`` adds or overrides headers (for
example ``anthropic-beta``; ``anthropic-version`` defaults to 2023-06-01), and
``max_output_tokens`` is the ``max_tokens`` sent when the client gives none (Anthropic
requires one; default 4096). ``base_url`` follows Anthropic's SDK convention: the
host root *without* ``/v1`` (default https://api.anthropic.com); a ``base_url`` that
ends in ``/v1``, as OpenAI-style configs do, is accepted too and not doubled.

Errors map to ``PortwayError`` at the edge: 429 → ``UpstreamRateLimitError`` (with
``retry-after``), 529/503 overloaded → ``UpstreamUnavailableError``, or
``UpstreamOverloadedError`` when it says when to come back (``retry-after``), 401/403 →
``UpstreamAuthError``, 400 "prompt is too long" → ``ContextLengthExceededError``, other
4xx → ``UpstreamBadRequestError``, 5xx → ``UpstreamError``, and an ``error`` event in
a stream (or a stream that ends before ``message_stop``) → ``UpstreamError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing

import orjson

from portway.config import ModelConfig
from portway.errors import (
    ContextLengthExceededError,
    PortwayError,
    RequestTooLargeError,
    UpstreamAuthError,
    UpstreamBadRequestError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
)
from portway.protocol.chat import ChatCompletionChunkDict, ChatCompletionDict, ChatCompletionRequest
from portway.providers.anthropic_stream import StreamTranslator
from portway.providers.anthropic_translate import to_completion, to_messages_request
from portway.providers.base import Capabilities, Continuation
from portway.providers.http import HttpUpstream, decode_json, parse_retry_after, unavailable_error
from portway.providers.remote import RemoteProvider

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
_CONTEXT_HINTS = ("prompt is too long", "context window", "context length")


def messages_endpoint(base_url: str) -> tuple[str, str]:
    """(base URL, path) for the Messages API, whether or not ``base_url`` ends in ``/v1``."""
    base = base_url.rstrip("/")
    if base.endswith("/v1"):
        return base, "messages"
    return base, "v1/messages"


def _error_fields(body: bytes) -> tuple[str, str]:
    """(error type, message) from Anthropic's ``{"type": "error", "error": {...}}``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "error", body[:500].decode("utf-8", "replace") or "no body"
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("type") or "error"), str(error.get("message") or "no message")
    return "error", str(payload)[:500]


def map_anthropic_error(status: int, body: bytes, headers: Mapping[str, str]) -> PortwayError:
    """An Anthropic error answer as the matching ``PortwayError``."""
    error_type, message = _error_fields(body)
    text = f"Upstream error ({status} {error_type}): {message}"
    if status == 429:
        return UpstreamRateLimitError(text, retry_after=parse_retry_after(headers))
    if status in (503, 529) or error_type == "overloaded_error":
        return unavailable_error(text, headers)
    if status in (401, 402, 403):
        return UpstreamAuthError(text)
    if status in (408, 504):
        return UpstreamTimeoutError(text)
    if status == 413:
        return RequestTooLargeError(text)
    if status == 404:
        return UpstreamNotFoundError(text)
    if 400 <= status < 500:
        if any(hint in message.lower() for hint in _CONTEXT_HINTS):
            return ContextLengthExceededError(text, param="messages")
        return UpstreamBadRequestError(text)
    return UpstreamError(text)


class AnthropicProvider(RemoteProvider):
    name = "anthropic"

    def __init__(self, config: ModelConfig) -> None:
        base_url, self._path = messages_endpoint(config.base_url or DEFAULT_BASE_URL)
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if config.api_key is not None:
            headers["x-api-key"] = config.api_key.get_secret_value()
        headers.update({name.lower(): value for name, value in config.headers.items()})
        http = HttpUpstream(
            base_url,
            headers=headers,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            error_mapper=map_anthropic_error,
        )
        self._max_tokens = config.max_output_tokens or DEFAULT_MAX_TOKENS
        super().__init__(
            config,
            http,
            Capabilities.for_remote(
                config, vision=True, embeddings=False, logprobs=False, prefill=True
            ),
        )

    def continuation(self, request: ChatCompletionRequest, partial: str) -> Continuation:
        """Anthropic continues a final assistant turn natively, trimmed of trailing
        whitespace (it rejects it), so the whitespace is expected back."""
        continued = super().continuation(request, partial)
        return Continuation(continued.request, partial[len(partial.rstrip()) :])

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionDict:
        model = self.config.upstream_model
        translated = to_messages_request(request, model, self._max_tokens, stream=False)
        message = await self._http.post(self._path, translated.payload)
        return to_completion(message, translated, model)

    async def stream(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        model = self.config.upstream_model
        translated = to_messages_request(request, model, self._max_tokens, stream=True)
        translator = StreamTranslator(model, translated)
        async with aclosing(self._http.stream(self._path, translated.payload)) as events:
            async for event in events:
                data = decode_json(event.data.encode("utf-8"), "stream")
                if not isinstance(data, dict):
                    raise UpstreamError("The upstream sent a stream event that is not an object.")
                for chunk in translator.feed(data):
                    yield chunk
                if translator.finished:
                    # message_stop is the end of the message: do not wait for the socket.
                    return
        raise UpstreamError("The upstream stream ended before `message_stop`.")
