"""A scriptable Anthropic Messages API upstream: real HTTP on loopback, real wire protocol.

Each request to ``POST /v1/messages`` takes the next scripted action (or echoes the
last user text when the script is empty). Requests are checked first the way
Anthropic checks them (strictly alternating roles, tool results right after their
tool calls, no empty or whitespace-only text, tool ids of ``[a-zA-Z0-9_-]``, tools
declared whenever the history holds tool blocks, not both ``temperature`` and
``top_p`` on current models, no whitespace-only stop sequences, a ``max_tokens``,
...), with the real API's messages, so a translation mistake fails as a 400 here
instead of only in production. Streams use Anthropic's real event sequence; errors
use its shape ``{"type": "error", "error": {"type", "message"}}``; ``Fail`` sends
any headers, such as the ``retry-after`` of a 429 or 529.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.upstream import Action, ScriptedUpstream, split_text, start_sse

_ids = itertools.count(1)
Event = tuple[str, dict[str, Any]]


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content or [] if b.get("type") == "text"]
        if texts:
            return "".join(texts)
    return ""


@dataclass
class ToolUse:
    """A ``tool_use`` block the fake model emits."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"toolu_fake{next(_ids):04d}")


def prefilled_text(body: dict[str, Any]) -> str:
    """The text of a final assistant turn (a prefill to continue), else ""."""
    messages = body.get("messages") or []
    if not messages or messages[-1].get("role") != "assistant":
        return ""
    content = messages[-1].get("content")
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if b.get("type") == "text")


@dataclass
class Reply(Action):
    """A successful message: text and/or tool_use blocks, streamed when asked."""

    text: str | None = None
    tool_uses: list[ToolUse] = field(default_factory=list)
    stop_reason: str | None = None
    input_tokens: int = 11
    output_tokens: int = 6
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    delay: float = 0.0
    chunk_delay: float = 0.0

    def _text(self, body: dict[str, Any]) -> str | None:
        text = self.text
        if self.text is None and not self.tool_uses:
            text = f"echo: {last_user_text(body)}"
        prefill = prefilled_text(body)
        if text and prefill and text.startswith(prefill):
            return text[len(prefill) :]  # Anthropic continues a final assistant turn
        return text

    def _usage(self, output_tokens: int) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": output_tokens,
        }

    def _blocks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        text = self._text(body)
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        for use in self.tool_uses:
            blocks.append({"type": "tool_use", "id": use.id, "name": use.name, "input": use.input})
        return blocks

    def message(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"msg_fake{next(_ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake"),
            "content": self._blocks(body),
            "stop_reason": self.stop_reason or ("tool_use" if self.tool_uses else "end_turn"),
            "stop_sequence": None,
            "usage": self._usage(self.output_tokens),
        }

    def events(self, body: dict[str, Any]) -> list[Event]:
        """The event sequence Anthropic streams for this message."""
        message = self.message(body)
        start = {**message, "content": [], "stop_reason": None, "usage": self._usage(1)}
        events: list[Event] = [
            ("message_start", {"type": "message_start", "message": start}),
            ("ping", {"type": "ping"}),
        ]
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                opened = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in split_text(block["text"])]
            else:
                opened = {**block, "input": {}}
                arguments = orjson.dumps(block["input"]).decode() if block["input"] else ""
                # Anthropic opens each tool input with an empty partial_json.
                pieces = ["", *split_text(arguments)] if arguments else [""]
                deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
            events.append(
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": opened},
                )
            )
            for delta in deltas:
                events.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": self.output_tokens},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if not body.get("stream"):
            return web.json_response(self.message(body), dumps=lambda v: orjson.dumps(v).decode())
        response = await start_sse(request)
        for event in self.events(body):
            await write_event(response, event)
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        await response.write_eof()
        return response


async def write_event(response: web.StreamResponse, event: Event) -> None:
    name, data = event
    await response.write(f"event: {name}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n")


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


@dataclass
class Fail(Action):
    """An error answer in Anthropic's error shape (429 and 529 are the usual suspects)."""

    status: int = 500
    error_type: str = "api_error"
    message: str = "Internal server error"
    headers: dict[str, str] = field(default_factory=dict)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.Response(
            status=self.status,
            body=orjson.dumps(error_body(self.error_type, self.message)),
            content_type="application/json",
            headers=self.headers,
        )


@dataclass
class StreamError(Action):
    """Stream ``after`` events of a reply, then an ``error`` event (as on overload)."""

    after: int = 2
    error_type: str = "overloaded_error"
    message: str = "Overloaded"
    reply: Reply = field(default_factory=Reply)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = await start_sse(request)
        for event in self.reply.events(body)[: self.after]:
            await write_event(response, event)
        await write_event(response, ("error", error_body(self.error_type, self.message)))
        await response.write_eof()
        return response


@dataclass
class Drop(Action):
    """Stream ``after`` events of a reply, then cut the connection (or end it cleanly)."""

    after: int = 3
    clean: bool = False
    reply: Reply = field(default_factory=Reply)

    async def respond(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = await start_sse(request)
        for event in self.reply.events(body)[: self.after]:
            await write_event(response, event)
        if self.clean:
            await response.write_eof()
        else:
            assert request.transport is not None
            request.transport.close()
        return response


# What Anthropic checks before it generates ------------------------------------

_USER_BLOCKS = {"text", "image", "document", "tool_result"}
_ASSISTANT_BLOCKS = {"text", "tool_use"}
_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")
# Models before Claude 4.1 accept temperature and top_p together; later ones do not.
_BOTH_SAMPLERS_ALLOWED = ("claude-3",)


def _id_problem(value: Any, where: str) -> str | None:
    if isinstance(value, str) and _TOOL_ID.fullmatch(value):
        return None
    return f"{where}: String should match pattern '^[a-zA-Z0-9_-]+$'"


def _check_block(block: Any, role: str, where: str) -> str | None:
    if not isinstance(block, dict) or "type" not in block:
        return f"{where}: content blocks must be objects with a type"
    kind = block["type"]
    if kind not in (_USER_BLOCKS if role == "user" else _ASSISTANT_BLOCKS):
        return f"{where}: `{kind}` blocks are not allowed in {role} messages"
    if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
        return f"{where}: text content blocks must be non-empty"
    if kind in ("image", "document"):
        source = block.get("source") or {}
        base64_ok = (
            source.get("type") == "base64" and source.get("media_type") and source.get("data")
        )
        if not (base64_ok or (source.get("type") == "url" and source.get("url"))):
            return f"{where}.source: invalid {kind} source"
    if kind == "tool_use":
        if not (block.get("name") and isinstance(block.get("input"), dict)):
            return f"{where}: tool_use needs id, name and an input object"
        return _id_problem(block.get("id"), f"{where}.id")
    if kind == "tool_result":
        return _id_problem(block.get("tool_use_id"), f"{where}.tool_use_id")
    return None


def _check_texts(blocks: list[Any]) -> str | None:
    """A turn whose text is all whitespace is refused (whitespace beside real text is not)."""
    texts = [b["text"] for b in blocks if b["type"] == "text"]
    if texts and not any(text.strip() for text in texts):
        return "messages: text content blocks must contain non-whitespace text"
    return None


def _check_sampling(body: dict[str, Any]) -> str | None:
    for key in ("temperature", "top_p"):
        if key in body and not 0 <= body[key] <= 1:
            return f"{key}: must be between 0 and 1"
    both = "temperature" in body and "top_p" in body
    if both and not str(body["model"]).startswith(_BOTH_SAMPLERS_ALLOWED):
        return (
            "`temperature` and `top_p` cannot both be specified for this model. "
            "Please use only one."
        )
    stops = body.get("stop_sequences")
    if stops is None:
        return None
    if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
        return "stop_sequences: must be a list of strings"
    if not all(stops):
        return "stop_sequences: each stop sequence must be non-empty"
    if not all(stop.strip() for stop in stops):
        return "stop_sequences: each stop sequence must contain non-whitespace"
    return None


def _check_system(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: must be a string or a list of text blocks"
    for index, block in enumerate(system):
        if not (isinstance(block, dict) and block.get("type") == "text"):
            return f"system.{index}: must be a text block"
        if not (isinstance(block.get("text"), str) and block["text"]):
            return f"system.{index}: text content blocks must be non-empty"
    return _check_texts(system)


def _check_tool_pairs(messages: list[dict[str, Any]]) -> str | None:
    """Every tool_use is answered by a tool_result at the start of the next user turn."""
    pending: set[str] = set()
    for index, message in enumerate(messages):
        blocks = message["content"] if isinstance(message["content"], list) else []
        results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
        if message["role"] == "user":
            if set(results) - pending:
                return f"messages.{index}: unexpected `tool_use_id` found in `tool_result` blocks"
            if pending - set(results):
                return f"messages.{index}: `tool_use` ids were found without `tool_result` blocks"
            leading = blocks[: len(results)]
            if any(b["type"] != "tool_result" for b in leading):
                return f"messages.{index}: tool_result blocks must come first"
            pending = set()
        else:
            pending = {b["id"] for b in blocks if b["type"] == "tool_use"}
    if pending:
        return "the last assistant tool_use blocks have no tool_result"
    return None


def _check_tools(body: dict[str, Any], uses_tools: bool) -> str | None:
    tools = body.get("tools")
    if tools is None:
        if "tool_choice" in body:
            return "tool_choice: requires tools"
        if uses_tools:
            return "Requests which include `tool_use` or `tool_result` blocks must define tools."
        return None
    names = [tool.get("name") for tool in tools]
    if len(set(names)) != len(names):
        return "tools: tool names must be unique"
    for index, tool in enumerate(tools):
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{index}.input_schema: type must be object"
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: invalid"
        if choice["type"] == "tool" and choice.get("name") not in names:
            return "tool_choice.name: not a declared tool"
        if choice["type"] == "none" and "disable_parallel_tool_use" in choice:
            return "tool_choice: disable_parallel_tool_use is not allowed with none"
    return None


def validate(body: dict[str, Any]) -> str | None:
    """Why Anthropic would reject this body with 400, or None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    problem = _check_sampling(body) or _check_system(body.get("system"))
    if problem:
        return problem
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    uses_tools = False
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{index}.role: must be user or assistant"
        if index and messages[index - 1]["role"] == role:
            return f"messages.{index}: roles must alternate between user and assistant"
        content = message.get("content")
        if isinstance(content, str):
            if not content:
                return f"messages.{index}: content must be non-empty"
            if not content.strip():
                return "messages: text content blocks must contain non-whitespace text"
            continue
        if not isinstance(content, list) or not content:
            return f"messages.{index}: content must be a non-empty string or list"
        for position, block in enumerate(content):
            problem = _check_block(block, role, f"messages.{index}.content.{position}")
            if problem:
                return problem
            uses_tools = uses_tools or block["type"] in ("tool_use", "tool_result")
        problem = _check_texts(content)
        if problem:
            return problem
    last = messages[-1]
    if last["role"] == "assistant" and isinstance(last["content"], list):
        tail = last["content"][-1]
        if tail["type"] == "text" and tail["text"] != tail["text"].rstrip():
            return "final assistant content cannot end with trailing whitespace"
    return _check_tool_pairs(messages) or _check_tools(body, uses_tools)


class FakeAnthropic(ScriptedUpstream):
    """The fake Messages API; ``script(...)`` queues actions, ``requests`` records arrivals."""

    def default_action(self) -> Action:
        return Reply()

    @property
    def base_url(self) -> str:
        """Anthropic's SDK convention: the host root, without ``/v1``."""
        return f"http://127.0.0.1:{self.port}"

    def build_app(self) -> web.Application:
        app = self.new_app()
        app.router.add_post("/v1/messages", self._messages)
        return app

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if not request.headers.get("x-api-key"):
            return await Fail(401, "authentication_error", "x-api-key header is required").respond(
                request, body
            )
        if request.headers.get("anthropic-version") != "2023-06-01":
            return await Fail(400, "invalid_request_error", "anthropic-version: invalid").respond(
                request, body
            )
        problem = validate(body)
        if problem:
            return await Fail(400, "invalid_request_error", problem).respond(request, body)
        return await self.next_action().respond(request, body)
