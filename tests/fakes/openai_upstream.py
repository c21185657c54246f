"""A scriptable OpenAI-compatible upstream: real HTTP on loopback, real wire protocol.

Each request takes the next scripted action (or echoes the last user message when the
script is empty). Actions cover the failure modes a gateway must survive: error
statuses with Retry-After, slow first bytes, stalls and drops mid-stream, malformed JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.upstream import Action, ScriptedUpstream, split_text, start_sse

_ids = itertools.count(1)
FAKE: web.AppKey[FakeOpenAI] = web.AppKey("fake")


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


def continued_prefix(body: dict[str, Any]) -> str:
    """The final assistant message a request asks to continue (vLLM's option), else ""."""
    messages = body.get("messages") or []
    if not body.get("continue_final_message") or not messages:
        return ""
    last = messages[-1]
    content = last.get("content")
    return content if last.get("role") == "assistant" and isinstance(content, str) else ""


@dataclass
class Reply(Action):
    """A successful completion, streamed when the request asks for a stream."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 7
    completion_tokens: int = 5
    delay: float = 0.0
    chunk_delay: float = 0.0
    model: str | None = None
    # The streamed content's exact chunks (else ``content`` in about three parts).
    pieces: list[str] | None = None

    def _content(self, body: dict[str, Any]) -> str | None:
        if self.pieces is not None:
            return "".join(self.pieces)
        text = self.content
        if self.content is None and self.tool_calls is None:
            text = f"echo: {last_user_text(body)}"
        prefix = continued_prefix(body)
        if text and prefix and text.startswith(prefix):
            return text[len(prefix) :]  # like vLLM: only the continuation is generated
        return text

    def _completion_tokens(self, body: dict[str, Any]) -> int:
        """Like a real upstream, never more than the request's output cap."""
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        return self.completion_tokens if cap is None else min(self.completion_tokens, cap)

    def _finish(self, body: dict[str, Any]) -> str:
        if self._completion_tokens(body) < self.completion_tokens:
            return "length"
        return self.finish_reason or ("tool_calls" if self.tool_calls else "stop")

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        completion_tokens = self._completion_tokens(body)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if body.get("stream"):
            return await self._stream(request, body)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self._content(body),
            "refusal": None,
        }
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        completion = {
            "id": f"chatcmpl-fake{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model or body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish(body),
                }
            ],
            "usage": self._usage(body),
            "system_fingerprint": "fp_fake",
        }
        return web.Response(body=orjson.dumps(completion), content_type="application/json")

    def chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        base = {
            "id": f"chatcmpl-fake{next(_ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model or body.get("model", "fake"),
            "system_fingerprint": "fp_fake",
        }
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
                **extra,
            }

        out = [chunk({"role": "assistant", "content": ""})]
        content = self._content(body)
        if content:
            pieces = self.pieces if self.pieces is not None else split_text(content) or [""]
            out += [chunk({"content": piece}) for piece in pieces]
        for index, call in enumerate(self.tool_calls or []):
            out.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for piece in split_text(call["function"]["arguments"]) or [""]:
                out.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
        out.append(chunk({}, self._finish(body)))
        if include_usage:
            out.append({**base, "choices": [], "usage": self._usage(body)})
        return out

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = await start_sse(request)
        try:
            for item in self.chunks(body):
                await response.write(b"data: " + orjson.dumps(item) + b"\n\n")
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            request.app[FAKE].disconnects += 1
            raise
        return response


@dataclass
class Fail(Action):
    """An error answer in OpenAI's error shape."""

    status: int = 500
    message: str = "The server had an error while processing your request."
    code: str | None = None
    error_type: str = "server_error"
    headers: dict[str, str] = field(default_factory=dict)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        payload = {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": None,
                "code": self.code,
            }
        }
        return web.Response(
            status=self.status,
            body=orjson.dumps(payload),
            content_type="application/json",
            headers=self.headers,
        )


@dataclass
class Raw(Action):
    """Any bytes with any status (malformed JSON, HTML error pages, ...)."""

    status: int = 200
    body: bytes = b"{not json"
    content_type: str = "application/json"

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.Response(status=self.status, body=self.body, content_type=self.content_type)


@dataclass
class Drop(Action):
    """Stream ``after`` chunks of a reply, then cut the connection."""

    after: int = 1
    reply: Reply = field(default_factory=Reply)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if not body.get("stream"):
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        response = await start_sse(request)
        for item in self.reply.chunks(body)[: self.after]:
            await response.write(b"data: " + orjson.dumps(item) + b"\n\n")
        assert request.transport is not None
        request.transport.close()
        return response


@dataclass
class ErrorEvent(Action):
    """Stream ``after`` chunks of a reply, then an error event, then end the stream."""

    after: int = 1
    message: str = "The model overloaded mid-generation."
    reply: Reply = field(default_factory=Reply)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = await start_sse(request)
        for item in self.reply.chunks(body)[: self.after]:
            await response.write(b"data: " + orjson.dumps(item) + b"\n\n")
        error = {"error": {"message": self.message, "type": "server_error", "code": None}}
        await response.write(b"data: " + orjson.dumps(error) + b"\n\n")
        await response.write_eof()
        return response


@dataclass
class Stall(Action):
    """Stream ``after`` chunks, then go silent for ``seconds`` (or hang before the first byte)."""

    after: int = 0
    seconds: float = 30.0
    reply: Reply = field(default_factory=Reply)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if not body.get("stream") or self.after == 0:
            await asyncio.sleep(self.seconds)
            return await self.reply.respond(request, body)
        response = await start_sse(request)
        for item in self.reply.chunks(body)[: self.after]:
            await response.write(b"data: " + orjson.dumps(item) + b"\n\n")
        await asyncio.sleep(self.seconds)
        return response


@dataclass
class Sometimes(Action):
    """``action`` with the given probability (seeded, so runs repeat), else ``otherwise``."""

    probability: float
    action: Action
    otherwise: Action = field(default_factory=Reply)
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        chosen = self.action if self._rng.random() < self.probability else self.otherwise
        return await chosen.respond(request, body)


@dataclass
class Cycle(Action):
    """The given actions in turn, forever (e.g. exactly 3 failures in every 10 requests)."""

    actions: list[Action]

    def __post_init__(self) -> None:
        self._next = itertools.cycle(self.actions)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return await next(self._next).respond(request, body)


def sse_data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _prompts(body: dict[str, Any]) -> list[str]:
    """A text completion's prompts as text (token ids written out as ``<id>``)."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(item, int) for item in prompt):
        return ["".join(f"<{token}>" for token in prompt)]
    return [item if isinstance(item, str) else "".join(f"<{t}>" for t in item) for item in prompt]


@dataclass
class TextReply(Action):
    """A ``text_completion`` as ``/v1/completions`` answers it: ``n`` choices per prompt,
    ``echo`` and ``logprobs`` honoured, streamed when asked (usage last when asked)."""

    text: str | None = None
    prompt_tokens: int = 6
    completion_tokens: int = 4
    chunk_delay: float = 0.0

    def _text(self, prompt: str) -> str:
        return f" completed: {prompt}" if self.text is None else self.text

    def _choices(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        per_prompt = body.get("n") or 1
        cap = body.get("max_tokens", 16)
        finish = "length" if cap is not None and cap < self.completion_tokens else "stop"
        choices = []
        for number, prompt in enumerate(_prompts(body)):
            text = (prompt if body.get("echo") else "") + self._text(prompt)
            logprobs = None
            if body.get("logprobs") is not None:
                tokens = text.split(" ")
                logprobs = {
                    "tokens": tokens,
                    "token_logprobs": [-0.5] * len(tokens),
                    "top_logprobs": [{token: -0.5} for token in tokens],
                    "text_offset": list(itertools.accumulate([0, *map(len, tokens[:-1])])),
                }
            for j in range(per_prompt):
                choices.append(
                    {
                        "text": text,
                        "index": number * per_prompt + j,
                        "logprobs": logprobs,
                        "finish_reason": finish,
                    }
                )
        return choices

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        prompts = len(_prompts(body))
        generated = prompts * (body.get("n") or 1) * self.completion_tokens
        return {
            "prompt_tokens": prompts * self.prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": prompts * self.prompt_tokens + generated,
        }

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        base = {
            "id": f"cmpl-fake{next(_ids)}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
        }
        choices = self._choices(body)
        if not body.get("stream"):
            answer = {**base, "choices": choices, "usage": self._usage(body)}
            return web.Response(body=orjson.dumps(answer), content_type="application/json")
        response = await start_sse(request)
        try:
            for choice in choices:
                for piece in split_text(choice["text"]):
                    part = {**choice, "text": piece, "finish_reason": None, "logprobs": None}
                    await response.write(sse_data({**base, "choices": [part]}))
                    if self.chunk_delay:
                        await asyncio.sleep(self.chunk_delay)
                end = {**choice, "text": "", "logprobs": None}
                await response.write(sse_data({**base, "choices": [end]}))
            if (body.get("stream_options") or {}).get("include_usage"):
                await response.write(sse_data({**base, "choices": [], "usage": self._usage(body)}))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            request.app[FAKE].disconnects += 1
            raise
        return response


@dataclass
class ByText(Action):
    """``action`` for requests whose last user message contains ``marker``, else
    ``otherwise``: a failure pinned to chosen requests, whatever order they arrive in."""

    marker: str
    action: Action
    otherwise: Action = field(default_factory=Reply)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        chosen = self.action if self.marker in last_user_text(body) else self.otherwise
        return await chosen.respond(request, body)


def fake_embedding(text: str, dimensions: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((byte - 128) / 128, 4) for byte in digest[:dimensions]]


class FakeOpenAI(ScriptedUpstream):
    """The fake upstream; ``script(...)`` queues actions for chat completions,
    ``script_embeddings(...)`` for embeddings, ``script_completions(...)`` for text
    completions; ``requests`` records what arrived."""

    def __init__(self) -> None:
        self._embedding_script: deque[Action] = deque()
        self._completion_script: deque[Action] = deque()
        self.disconnects = 0  # streams the client (Portway) abandoned midway
        super().__init__()

    def default_action(self) -> Action:
        return Reply()

    def script_embeddings(self, *actions: Action) -> None:
        """Answers for the next ``/v1/embeddings`` calls (e.g. ``Fail(500)``)."""
        self._embedding_script.extend(actions)

    def script_completions(self, *actions: Action) -> None:
        """Answers for the next ``/v1/completions`` calls (default: ``TextReply()``)."""
        self._completion_script.extend(actions)

    def reset(self) -> None:
        super().reset()
        self._embedding_script.clear()
        self._completion_script.clear()
        self.disconnects = 0

    def build_app(self) -> web.Application:
        app = self.new_app()
        app[FAKE] = self
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        return app

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        return await self.next_action().respond(request, body)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        action = self._completion_script.popleft() if self._completion_script else TextReply()
        return await action.respond(request, body)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if self._embedding_script:
            return await self._embedding_script.popleft().respond(request, body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(str(text))}
            for i, text in enumerate(inputs)
        ]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
            }
        )

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"object": "list", "data": []})
