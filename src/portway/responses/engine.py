"""The response engine: model calls (and built-in tools) until the model answers.

Contract: ``run(job)`` yields the response's stream events in OpenAI's order, from
``response.created`` to ``response.completed`` or ``response.incomplete``, and leaves the
finished Response object in ``job.body``. Each model call goes through the one door
(``ModelClient``; streamed when someone follows the events, else answered whole) as the
caller, with the response id as its request id, on the job's ``CallTerms`` (ledger
endpoint ``responses``; a batch line's: ``batches``, its priority and price factor).
Built-in tools (file_search, code_interpreter) run here and the model is called again
with their output; function calls end the response and are returned to the client.
``max_tool_calls`` bounds built-in calls (later calls are not offered the tools again);
``responses.max_model_calls`` bounds the rounds (the response then ends ``failed``). A
model call's ``PortwayError`` propagates (the caller renders or records it). File_search
results are numbered across the response, so the answer's ``[n]`` markers become
``file_citation`` annotations.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import orjson

from portway.assistants.builtin import BuiltinTool, ToolInvocation, ToolOutcome
from portway.assistants.ids import new_id
from portway.assistants.tool_policy import ToolLimits
from portway.assistants.tools import renumber_markers
from portway.errors import ServiceUnavailableError
from portway.limits.stage import PRIORITY_HEADER
from portway.pipeline.base import CallContext
from portway.pipeline.client import ModelClient
from portway.protocol.responses import CreateResponseRequest, FileSearchTool
from portway.responses.render import usage_object, visible_item
from portway.responses.request import builtin_names, chat_request
from portway.responses.stream import Event, OutputBuilder, Source
from portway.security.principal import Principal

logger = logging.getLogger(__name__)

LEDGER_ENDPOINT = "responses"


@dataclass(frozen=True, slots=True)
class CallTerms:
    """On what terms a response's model calls are made (a batch line's are its batch's)."""

    endpoint: str = LEDGER_ENDPOINT  # the ledger rows' endpoint
    priority: int | None = None  # queue priority; None: the key's own
    price_factor: float = 1.0  # the ledger bills the list price times this

    def headers(self) -> dict[str, str]:
        return {} if self.priority is None else {PRIORITY_HEADER: str(self.priority)}


@dataclass
class ResponseJob:
    """One response to produce: its request, its caller and the model's context so far."""

    id: str
    principal: Principal
    request: CreateResponseRequest
    body: dict[str, Any]  # the Response object, built as the model answers
    messages: list[dict[str, Any]]  # chat messages: instructions, history, this input
    include: tuple[str, ...] = ()
    input_items: list[dict[str, Any]] = field(default_factory=list)  # as stored and listed
    # Someone follows the events as they come (a stream, a background response's stored
    # events): model calls are streamed. Otherwise each is answered whole (cheaper).
    live: bool = True
    created_at: float = 0.0
    completed_at: float | None = None
    terms: CallTerms = field(default_factory=CallTerms)
    # The ``compaction`` item made for this response's context: its first output item.
    compaction: dict[str, Any] | None = None
    # What fitting the context did (``x-portway-context*``), sent with a whole response.
    context_headers: dict[str, str] = field(default_factory=dict)
    builder: OutputBuilder = field(init=False)

    def __post_init__(self) -> None:
        self.builder = OutputBuilder(self.body)


@dataclass
class _Turn:
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)  # chat index → call
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    text: str = ""


@dataclass
class _Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def add(self, usage: Mapping[str, Any] | None) -> None:
        usage = usage or {}
        self.input_tokens += int(usage.get("prompt_tokens") or 0)
        self.output_tokens += int(usage.get("completion_tokens") or 0)
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        self.cached_tokens += int(prompt_details.get("cached_tokens") or 0)
        self.reasoning_tokens += int(completion_details.get("reasoning_tokens") or 0)

    def render(self) -> dict[str, Any]:
        return usage_object(
            self.input_tokens, self.cached_tokens, self.output_tokens, self.reasoning_tokens
        )


class ResponseEngine:
    def __init__(
        self,
        models: ModelClient,
        builtin_tools: Mapping[str, BuiltinTool],
        max_model_calls: int,
        tool_limits: ToolLimits,
        clock: Callable[[], float],
    ) -> None:
        self._models = models
        self._builtin_tools = builtin_tools
        self._max_model_calls = max_model_calls
        self._tool_limits = tool_limits
        self._clock = clock

    async def run(self, job: ResponseJob) -> AsyncIterator[Event]:
        builder, body, request = job.builder, job.body, job.request
        body["status"] = "in_progress"
        yield builder.snapshot("response.created")
        yield builder.snapshot("response.in_progress")
        if job.compaction is not None:
            for event in builder.item(job.compaction):
                yield event
        usage = _Usage()
        messages = list(job.messages)
        builtins = builtin_names(request)
        builtin_calls = 0
        incomplete = False
        # Every turn but the last ran built-in tools: the turn index counts tool rounds.
        for tool_rounds in range(self._max_model_calls):
            remaining = _remaining(request.max_output_tokens, usage.output_tokens)
            if remaining is not None and remaining <= 0:
                incomplete = True
                break
            # After the tool round bound the model is not offered built-ins: it must answer.
            offer_builtins = tool_rounds < self._tool_limits.max_rounds and (
                request.max_tool_calls is None or builtin_calls < request.max_tool_calls
            )
            chat = chat_request(
                request,
                messages,
                max_output_tokens=remaining,
                builtins=offer_builtins,
                tool_called=builtin_calls > 0,
                stream=job.live,
            )
            turn = _Turn()
            async for event in self._call(job, chat, turn, builtins):
                yield event
            usage.add(turn.usage)
            body["usage"] = usage.render()
            if turn.finish_reason == "length":
                for event in builder.close(status="incomplete"):
                    yield event
                incomplete = True
                break
            for event in builder.close():
                yield event
            ran = [call for call in turn.calls.values() if call["name"] in builtins]
            if not ran or len(ran) < len(turn.calls):
                break  # the model answered, or called functions the client runs
            messages.append(_assistant_turn(turn))
            for call in ran:
                builtin_calls += 1
                output = ""
                async for event, text in self._builtin(job, call):
                    if event is not None:
                        yield event
                    output = text
                content = self._tool_limits.clip(output)
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
        else:
            body["usage"] = usage.render()
            body["status"] = "failed"
            body["error"] = {
                "code": "server_error",
                "message": f"The response made {self._max_model_calls} model calls without "
                "answering (responses.max_model_calls).",
            }
            yield builder.snapshot("response.failed")
            return
        body["usage"] = usage.render()
        if incomplete:
            body["status"] = "incomplete"
            body["incomplete_details"] = {"reason": "max_output_tokens"}
            yield builder.snapshot("response.incomplete")
            return
        body["status"] = "completed"
        job.completed_at = self._clock()
        body["completed_at"] = int(job.completed_at)
        yield builder.snapshot("response.completed")

    async def _call(
        self, job: ResponseJob, chat: Any, turn: _Turn, builtins: set[str]
    ) -> AsyncIterator[Event]:
        builder = job.builder
        terms = job.terms
        ctx = self._models.context(
            chat,
            principal=job.principal,
            request_id=job.id,
            endpoint=terms.endpoint,
            headers=terms.headers(),
        )
        ctx.price_factor = terms.price_factor
        # Pseudonyms continue along the conversation or the previous_response_id chain.
        conversation = job.request.conversation_id
        ctx.pseudonyms_from = conversation or job.request.previous_response_id
        ctx.pseudonyms_to = conversation or (job.id if job.body.get("store") else None)
        async with aclosing(self._chunks(ctx, job.live)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                if chunk.get("usage"):
                    turn.usage = dict(chunk["usage"])  # type: ignore[arg-type]
                for choice in chunk["choices"]:
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if text and not turn.calls:
                        turn.text += text
                        for event in builder.text(text):
                            yield event
                    for call in delta.get("tool_calls") or ():
                        for event in self._on_call(builder, turn, dict(call), builtins):
                            yield event
                    if choice.get("finish_reason"):
                        turn.finish_reason = choice["finish_reason"]
        if turn.usage is None and ctx.usage:
            turn.usage = dict(ctx.usage)

    async def _chunks(self, ctx: CallContext, live: bool) -> AsyncIterator[dict[str, Any]]:
        """The call's answer as chunks: streamed, or the whole answer as one chunk."""
        if live:
            async with aclosing(self._models.stream(ctx)) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    yield chunk  # type: ignore[misc]
            return
        completion = await self._models.call(ctx)
        yield _as_chunk(completion)

    @staticmethod
    def _on_call(
        builder: OutputBuilder, turn: _Turn, call: dict[str, Any], builtins: set[str]
    ) -> list[Event]:
        index = int(call.get("index") or 0)
        function = call.get("function") or {}
        current = turn.calls.get(index)
        events: list[Event] = []
        if current is None:
            name = function.get("name") or ""
            current = {"id": call.get("id") or new_id("call"), "name": name, "arguments": ""}
            turn.calls[index] = current
            if name in builtins:
                events += builder.close()  # built-in calls are shown once they ran
            else:
                events += builder.function_call(current["id"], name)
        piece = function.get("arguments")
        if piece:
            current["arguments"] += piece
            if current["name"] not in builtins:
                events += builder.arguments(piece)
        return events

    async def _builtin(
        self, job: ResponseJob, call: dict[str, Any]
    ) -> AsyncIterator[tuple[Event | None, str]]:
        """Run one built-in call: its events, then (None, the output the model sees)."""
        name = call["name"]
        try:
            arguments = orjson.loads(call["arguments"] or "{}")
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            arguments = {}
        item = _builtin_item(name, call["id"], arguments)
        index, events = job.builder.builtin_started(item)
        for event in events:
            yield event, ""
        tool = self._builtin_tools.get(name)
        if tool is None:
            raise ServiceUnavailableError(f"The {name} tool is not available on this server.")
        invocation = ToolInvocation(
            tenant=job.principal.tenant,
            run_id=job.id,
            thread_id=job.id,
            arguments=arguments,
            vector_store_ids=_vector_stores(job.request),
            principal=job.principal,
        )
        outcome = await tool.invoke(invocation)
        sources = job.builder.sources
        # Several searches in one response: their [n] markers continue one numbering.
        output = renumber_markers(outcome.output, len(sources), len(outcome.citations))
        names = {
            result["file_id"]: result.get("file_name", "")
            for result in outcome.step_details.get("results") or ()
        }
        sources += [
            Source(cited.file_id, names.get(cited.file_id, "")) for cited in outcome.citations
        ]
        done = _finished_item(item, outcome)
        for event in job.builder.builtin_done(index, done, visible_item(done, job.include)):
            yield event, ""
        yield None, output


def _as_chunk(completion: Mapping[str, Any]) -> dict[str, Any]:
    """A whole chat completion as the one chunk that would have carried all of it."""
    choices = []
    for choice in completion["choices"]:
        message = choice["message"]
        delta: dict[str, Any] = {"content": message.get("content")}
        calls = message.get("tool_calls") or ()
        if calls:
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
        choices.append(
            {"index": choice["index"], "delta": delta, "finish_reason": choice["finish_reason"]}
        )
    return {"choices": choices, "usage": completion.get("usage")}


def _remaining(limit: int | None, used: int) -> int | None:
    return None if limit is None else limit - used


def _assistant_turn(turn: _Turn) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": turn.text or None,
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            for call in turn.calls.values()
        ],
    }


def _vector_stores(request: CreateResponseRequest) -> tuple[str, ...]:
    ids = [
        store
        for tool in request.tools or ()
        if isinstance(tool, FileSearchTool)
        for store in tool.vector_store_ids
    ]
    return tuple(dict.fromkeys(ids))


def _builtin_item(name: str, call_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
    if name == "file_search":
        query = arguments.get("query")
        return {
            "id": call_id,
            "type": "file_search_call",
            "status": "in_progress",
            "queries": [query] if isinstance(query, str) else [],
            "results": None,
        }
    code = arguments.get("code")
    return {
        "id": call_id,
        "type": "code_interpreter_call",
        "status": "in_progress",
        "code": code if isinstance(code, str) else "",
        "container_id": "auto",
        "outputs": None,
    }


def _finished_item(item: dict[str, Any], outcome: ToolOutcome) -> dict[str, Any]:
    details = outcome.step_details
    if item["type"] == "file_search_call":
        results = [
            {
                "file_id": result["file_id"],
                "filename": result.get("file_name", ""),
                "score": result.get("score", 0.0),
                "text": "".join(part.get("text", "") for part in result.get("content") or ()),
                "attributes": {},
            }
            for result in details.get("results") or ()
        ]
        return {**item, "status": "completed", "results": results}
    outputs = [
        output
        if output.get("type") == "logs"
        else {"type": "image", "url": f"/v1/files/{output['image']['file_id']}/content"}
        for output in details.get("outputs") or ()
        if output.get("type") == "logs" or "image" in output
    ]
    return {**item, "status": "completed", "outputs": outputs}
