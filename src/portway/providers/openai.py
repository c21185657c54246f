"""Any OpenAI-compatible upstream: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp server, ...

Requests pass through as the client sent them (unknown fields included, so upstream
extensions such as vLLM's ``top_k`` keep working), with the upstream model id
swapped in; legacy text completions go to the upstream's ``/v1/completions`` (or are
mapped to chat when the config says ``supports_completions: false``). Streams are
relayed event by event. Azure is selected by setting ``api_version``: the deployment
lives in ``base_url`` and the key goes in ``api-key``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from portway.config import ModelConfig
from portway.errors import (
    ContentPolicyError,
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
from portway.protocol.completions import CompletionDict, CompletionRequest
from portway.protocol.embeddings import EmbeddingRequest, EmbeddingResponseDict
from portway.protocol.native_responses import NativeResponseRequest
from portway.providers.base import Capabilities, Continuation
from portway.providers.http import HttpUpstream, decode_json, parse_retry_after, unavailable_error
from portway.providers.remote import RemoteProvider

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_CONTEXT_HINTS = ("context_length_exceeded", "maximum context length", "context window")
# The stream events that end a Response (its last event, with its usage).
RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_CONTENT_POLICY_HINTS = ("content_policy", "content_filter", "content management policy")


def _upstream_error_fields(body: bytes) -> tuple[str, str | None, str | None]:
    """(message, code, param) from an OpenAI-style error body, tolerating anything."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace") or "no body", None, None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        param = error.get("param")
        return (
            str(error.get("message") or "no message"),
            str(code) if code is not None else None,
            str(param) if param is not None else None,
        )
    if isinstance(error, str):  # Ollama and llama.cpp server send {"error": "..."}
        return error, None, None
    return str(payload)[:500], None, None


def map_openai_error(status: int, body: bytes, headers: Mapping[str, str]) -> PortwayError:
    """An OpenAI-compatible error answer as the matching ``PortwayError``."""
    message, code, param = _upstream_error_fields(body)
    text = f"Upstream error ({status}): {message}"
    if status == 429:
        return UpstreamRateLimitError(text, retry_after=parse_retry_after(headers))
    if status in (401, 403):
        return UpstreamAuthError(text)
    if status == 408:
        return UpstreamTimeoutError(text)
    if status == 413:
        return RequestTooLargeError(text)
    if status in (400, 404, 422):
        lowered = f"{code} {message}".lower()
        if any(hint in lowered for hint in _CONTEXT_HINTS):
            return ContextLengthExceededError(text, param=param or "messages")
        if any(hint in lowered for hint in _CONTENT_POLICY_HINTS):
            return ContentPolicyError(text, param=param)
        if status == 404:
            return UpstreamNotFoundError(text)
        return UpstreamBadRequestError(text, param=param)
    if status == 503:
        return unavailable_error(text, headers)
    return UpstreamError(text)


class OpenAIProvider(RemoteProvider):
    name = "openai"

    def __init__(self, config: ModelConfig) -> None:
        api_key = config.api_key.get_secret_value() if config.api_key else None
        headers = dict(config.headers)
        query: dict[str, str] = {}
        if config.api_version:  # Azure OpenAI
            query["api-version"] = config.api_version
            if api_key:
                headers["api-key"] = api_key
        elif api_key:
            headers["authorization"] = f"Bearer {api_key}"
        http = HttpUpstream(
            config.base_url or DEFAULT_BASE_URL,
            headers=headers,
            query=query,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            error_mapper=map_openai_error,
        )
        super().__init__(
            config,
            http,
            Capabilities.for_remote(
                config, vision=False, embeddings=True, logprobs=True, completions=True
            ),
        )

    def _payload(
        self, request: ChatCompletionRequest | CompletionRequest, *, stream: bool
    ) -> dict[str, Any]:
        payload = dict(request.wire_body())  # a shallow copy: the body is shared
        payload["model"] = self.config.upstream_model
        payload["stream"] = stream
        if self.config.cache_salt:
            payload["cache_salt"] = request.cache_scope
        if stream:
            # Ask for usage always: accounting needs it; the service drops it if unasked.
            options = payload.get("stream_options") or {}
            payload["stream_options"] = {**options, "include_usage": True}
        else:
            payload.pop("stream_options", None)
        return payload

    def continuation(self, request: ChatCompletionRequest, partial: str) -> Continuation:
        """The assistant prefix with vLLM's flags to continue it (``prefill: true`` says the
        server honours them; OpenAI itself does not continue a final assistant message)."""
        continued = super().continuation(request, partial)
        if not partial:
            return continued
        flags = {"continue_final_message": True, "add_generation_prompt": False}
        return Continuation(continued.request.model_copy(update=flags))

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionDict:
        completion = await self._http.post("chat/completions", self._payload(request, stream=False))
        if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
            raise UpstreamError("The upstream answered without `choices`.")
        return completion  # type: ignore[return-value]

    async def stream(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        async for chunk in self._events("chat/completions", self._payload(request, stream=True)):
            yield chunk  # type: ignore[misc]

    async def complete_text(self, request: CompletionRequest) -> CompletionDict:
        """``/v1/completions`` passed through, unless the config says the upstream lacks it."""
        if not self.capabilities.completions:
            return await super().complete_text(request)
        completion = await self._http.post("completions", self._payload(request, stream=False))
        if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
            raise UpstreamError("The upstream answered without `choices`.")
        return completion  # type: ignore[return-value]

    async def stream_text(self, request: CompletionRequest) -> AsyncIterator[CompletionDict]:  # type: ignore[override]
        if not self.capabilities.completions:
            async for mapped in super().stream_text(request):
                yield mapped
            return
        async for chunk in self._events("completions", self._payload(request, stream=True)):
            yield chunk  # type: ignore[misc]

    async def _events(self, path: str, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """A streamed answer's chunks; an error event or a stream cut short raises."""
        finished = False
        async for event in self._http.stream(path, payload):
            if event.data == "[DONE]":
                return
            chunk = decode_json(event.data.encode("utf-8"), "stream")
            if not isinstance(chunk, dict):
                raise UpstreamError("The upstream sent a stream event that is not an object.")
            if "error" in chunk:
                message, code, _ = _upstream_error_fields(event.data.encode("utf-8"))
                error = UpstreamError(f"Upstream stream error: {message}", code=code)
                raise self._http.redactor.client_safe(error)
            if any(choice.get("finish_reason") for choice in chunk.get("choices") or ()):
                finished = True
            yield chunk
        if not finished:
            raise UpstreamError("The upstream stream ended before the completion finished.")

    async def respond(self, request: NativeResponseRequest) -> dict[str, Any]:
        """``/v1/responses`` forwarded as the client sent it (``responses: native``)."""
        if not self.capabilities.responses:
            return await super().respond(request)
        body = request.upstream_body(self.config.upstream_model)
        body["stream"] = False
        response = await self._http.post("responses", body)
        if not isinstance(response, dict) or response.get("object") != "response":
            raise UpstreamError("The upstream answered without a Response object.")
        return response

    async def stream_response(  # type: ignore[override]
        self, request: NativeResponseRequest
    ) -> AsyncIterator[dict[str, Any]]:
        """The upstream's Response events relayed; an ``error`` event or a stream cut
        before the response ended raises."""
        if not self.capabilities.responses:
            async for event in super().stream_response(request):
                yield event
            return
        body = request.upstream_body(self.config.upstream_model)
        body["stream"] = True
        finished = False
        async for event in self._http.stream("responses", body):
            payload = decode_json(event.data.encode("utf-8"), "stream")
            if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
                raise UpstreamError("The upstream sent a stream event without a `type`.")
            if payload["type"] == "error":
                message = str(payload.get("message") or "no message")
                code = payload.get("code")
                error = UpstreamError(
                    f"Upstream stream error: {message}", code=str(code) if code else None
                )
                raise self._http.redactor.client_safe(error)
            finished = finished or payload["type"] in RESPONSE_ENDS
            yield payload
        if not finished:
            raise UpstreamError("The upstream stream ended before the response finished.")

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponseDict:
        payload = request.model_dump(exclude_unset=True)
        payload["model"] = self.config.upstream_model
        result = await self._http.post("embeddings", payload)
        if not isinstance(result, dict) or not isinstance(result.get("data"), list):
            raise UpstreamError("The upstream answered embeddings without `data`.")
        return result  # type: ignore[return-value]
