"""``ResponseService``: create, retrieve, delete and list responses, scoped to the caller.

Contract: ``prepare`` checks a request and builds its model context (instructions, then
the chain of ``previous_response_id`` or the ``conversation``'s items, then this input)
before anything is streamed, so every client error is an HTTP error: unknown model 404
``model_not_found``, missing ``input`` 400, unknown or unstored earlier responses and
conversations 404, a context over the model's window with ``truncation: disabled`` 400
``context_length_exceeded`` (``auto`` applies the context stage's ``truncate``: the
oldest items go, system/developer items, a call's results with it and the newest input
stay). A finished response is
saved (``store``, default true) with its input items, and appended to its conversation,
in one transaction. Objects of another tenant are reported as missing.

Background responses (``background: true``) are saved ``queued`` and executed by the
run workers (``responses.jobs``); their events are stored as they come, so ``resume`` can follow
their stream from any process (``starting_after``). ``cancel`` works on them only (a
foreground response is 400). A foreground stream whose client goes away is not saved:
its model call is cancelled with it, as a chat completion's is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from portway.accounting.tokenizer import OFFLOAD_CHARS, request_chars
from portway.assistants.context import ContextBuilder
from portway.assistants.engine import error_code
from portway.assistants.ids import new_id
from portway.assistants.principals import RunPrincipals, principal_snapshot
from portway.assistants.workers import RunWorkers
from portway.context.policy import CONTEXT_HEADER, TOKENS_HEADER
from portway.context.strategies import Truncate, fit
from portway.context.turns import split
from portway.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    PortwayError,
)
from portway.privacy.owners import content_owner, request_user
from portway.privacy.stage import zero_retention_error
from portway.protocol.chat import ChatCompletionRequest
from portway.protocol.events import ServerSentEvent
from portway.protocol.responses import (
    CompactRequest,
    CreateResponseRequest,
    FunctionTool,
    InputTokensRequest,
    ToolChoiceFunction,
)
from portway.responses.compaction import ResponseCompaction, compaction_object
from portway.responses.engine import ResponseEngine, ResponseJob
from portway.responses.items import chat_messages, resolve_references, stored_items
from portway.responses.progress import output_so_far
from portway.responses.render import new_response, visible_response
from portway.responses.request import chat_request
from portway.security.principal import Principal
from portway.store.models.responses import ResponseRow
from portway.store.pagination import Page, PageRequest
from portway.store.responses import ItemRow, ResponseStore, item_rows

logger = logging.getLogger(__name__)

# How far back a previous_response_id chain is followed (a guard, not a product limit).
MAX_CHAIN = 10_000
ACTIVE = ("queued", "in_progress")
# A background response's stream events are written in batches of deltas at most this big.
EVENT_BATCH = 32


def missing(kind: str, object_id: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(f"No {kind} found with id '{object_id}'.", param=param)


@dataclass(slots=True)
class _Context:
    """A response's model context as prepared (see ``ResponseService._messages``)."""

    messages: list[dict[str, Any]]
    input_items: list[dict[str, Any]]
    compaction: dict[str, Any] | None
    headers: dict[str, str]  # x-portway-context*: what fitting it did


class ResponseService:
    def __init__(
        self,
        store: ResponseStore,
        engine: ResponseEngine,
        context: ContextBuilder,
        known_model: Callable[[str], bool],
        principals: RunPrincipals,
        poll_seconds: float,
        compaction: ResponseCompaction,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._compaction = compaction
        self._store = store
        self._engine = engine
        self._context = context
        self._known_model = known_model
        self._principals = principals
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._workers: RunWorkers[ResponseRow] | None = None

    # Preparing a response ------------------------------------------------------------

    def _check_model(self, principal: Principal, model: str) -> None:
        if not self._known_model(model) or not principal.may_use(model):
            raise ModelNotFoundError(model)

    async def _history(
        self, principal: Principal, previous: str | None, conversation: str | None
    ) -> list[dict[str, Any]]:
        if previous is not None and conversation is not None:
            raise InvalidRequestError(
                "'previous_response_id' and 'conversation' cannot be used together.",
                param="conversation",
                code="invalid_value",
            )
        if conversation is not None:
            if await self._store.get_conversation(principal.tenant, conversation) is None:
                raise missing("conversation", conversation, "conversation")
            return await self._store.items_of(conversation)
        if previous is None:
            return []
        segments: list[list[dict[str, Any]]] = []
        current: str | None = previous
        while current is not None and len(segments) < MAX_CHAIN:
            row = await self._store.get_response(principal.tenant, current)
            if row is None:
                if not segments:
                    raise missing("response", current, "previous_response_id")
                break
            if not segments and row.status in ("queued", "in_progress"):
                raise InvalidRequestError(
                    f"Response '{current}' is still {row.status}; chain on it once it is done.",
                    param="previous_response_id",
                    code="invalid_value",
                )
            segments.append([*await self._store.items_of(row.id), *row.body["output"]])
            current = row.previous_response_id
        return [item for segment in reversed(segments) for item in segment]

    async def _fit(
        self,
        model: str,
        head: list[dict[str, Any]],
        history: list[dict[str, Any]],
        build: Callable[[list[dict[str, Any]]], Any],
        truncation: str | None,
        output_cap: int | None,
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The messages to send: ``head`` + ``history`` fitted to the model's window, and
        the ``x-portway-context*`` headers saying what that did."""
        messages = [*head, *history]
        limit = self._context.window_limit(model, output_cap)
        if limit is None:
            return messages, {}
        tokens = await self._context.count(model, build(messages))
        if tokens <= limit:
            return messages, {CONTEXT_HEADER: "none", TOKENS_HEADER: f"{tokens}->{tokens}"}
        if truncation != "auto":
            raise ContextLengthExceededError(
                f"The input ({tokens} tokens) exceeds the context window of '{model}' "
                f"({limit} tokens for the input). Shorten it, or set truncation to 'auto'.",
                param="input",
            )
        request = build(messages)
        costs = await self._message_costs(model, request)
        # The chat completions' truncate strategy: system/developer items and the newest
        # turns stay, a call goes with its results, the newest input is never dropped.
        turns = split(request.messages)
        kept = fit(turns, Truncate().drop_order(turns), [costs], [tokens - sum(costs)], limit)
        if not kept.fits:
            raise ContextLengthExceededError(
                f"The newest input items ({kept.tokens} tokens once every older one is "
                f"left out) exceed the context window of '{model}' ({limit} tokens for the "
                "input).",
                param="input",
            )
        fitted = [messages[i] for i in kept.kept]
        return fitted, {CONTEXT_HEADER: "truncated", TOKENS_HEADER: f"{tokens}->{kept.tokens}"}

    async def _messages(
        self,
        principal: Principal,
        request: CreateResponseRequest,
        input_items: list[dict[str, Any]],
        response_id: str,
    ) -> _Context:
        """The model's context (instructions, earlier items, this input, compacted when
        asked, fitted), the input with its item references resolved, and the compaction
        item made for it (None: none)."""
        history = await self._history(
            principal, request.previous_response_id, request.conversation_id
        )
        input_items = resolve_references(input_items, history)
        self._compaction.verify(principal, input_items)
        head = [{"role": "system", "content": request.instructions}] if request.instructions else []

        def build(messages: list[dict[str, Any]]) -> Any:
            return chat_request(
                request,
                messages,
                max_output_tokens=request.max_output_tokens,
                builtins=True,
                tool_called=False,
            )

        context = chat_messages(self._compaction.expand(principal, [*history, *input_items]))
        compacted = await self._compaction.maybe_compact(
            principal, request, build([*head, *context]), response_id
        )
        item = None
        if compacted is not None:
            head, context, item = [], compacted.messages, compacted.item
        messages, headers = await self._fit(
            request.model, head, context, build, request.truncation, request.max_output_tokens
        )
        if item is not None:
            headers[CONTEXT_HEADER] = "summarized"
        return _Context(messages, input_items, item, headers)

    async def _message_costs(self, model: str, request: ChatCompletionRequest) -> list[int]:
        """The tokens each message adds to the prompt."""
        counter = await self._context.counter(model)

        def count() -> list[int]:
            return [counter.message_cost(m) for m in request.messages]

        if request_chars(request) > OFFLOAD_CHARS:
            return await asyncio.to_thread(count)
        return count()

    async def prepare(self, principal: Principal, request: CreateResponseRequest) -> ResponseJob:
        if request.input is None:
            raise InvalidRequestError(
                "Missing required parameter: 'input'.",
                param="input",
                code="missing_required_parameter",
            )
        self._check_model(principal, request.model)
        _check_tool_choice(request)
        # Zero-retention keys keep nothing: their responses are never stored, and asking
        # for storage (or for a conversation, which only exists stored) is refused.
        if principal.retention.zero:
            if request.store is True:
                raise zero_retention_error(
                    "responses cannot be stored ('store' must be false)", "store"
                )
            if request.conversation_id is not None:
                raise zero_retention_error("it has no conversations", "conversation")
        store = request.store is not False and not principal.retention.zero
        if request.background and not store:
            raise InvalidRequestError(
                "Background responses must be stored: 'background' needs 'store' true "
                "(and a key that keeps content).",
                param="background",
                code="invalid_value",
            )
        response_id = new_id("resp")
        fitted = await self._messages(principal, request, stored_items(request.input), response_id)
        messages, input_items, compaction = fitted.messages, fitted.input_items, fitted.compaction
        now = self._clock()
        status = "queued" if request.background else "in_progress"
        body = new_response(response_id, now, request, status=status, store=store)
        return ResponseJob(
            id=response_id,
            principal=principal,
            request=request,
            body=body,
            messages=messages,
            include=tuple(request.include or ()),
            input_items=input_items,
            created_at=now,
            compaction=compaction,
            context_headers=fitted.headers,
        )

    # Running it ----------------------------------------------------------------------

    async def create(self, job: ResponseJob) -> dict[str, Any]:
        """Run a response to its end; its Response object as the client sees it."""
        job.live = job.builder.keep = False
        async with aclosing(self._engine.run(job)) as events:  # type: ignore[type-var]
            async for _ in events:
                pass
        await self._save(job)
        return visible_response(job.body, job.include)

    async def stream(self, job: ResponseJob) -> AsyncIterator[ServerSentEvent]:
        """The response's events as SSE; a model failure ends it with ``response.failed``."""
        async for event in self._events(job):
            yield ServerSentEvent(event["type"], event)
        await self._save(job)

    async def _events(self, job: ResponseJob) -> AsyncIterator[dict[str, Any]]:
        """The engine's events as the client sees them; a failure becomes ``response.failed``."""
        try:
            async with aclosing(self._engine.run(job)) as events:  # type: ignore[type-var]
                async for event in events:
                    if "response" in event:
                        event = {
                            **event,
                            "response": visible_response(event["response"], job.include),
                        }
                    yield event
        except PortwayError as error:
            logger.info("response %s failed: %s", job.id, error.message)
            for event in self._failed(job, error_code(error), error.message):
                yield event
        except Exception:
            logger.exception("response %s failed", job.id)
            message = "The server had an error while processing your request."
            for event in self._failed(job, "server_error", message):
                yield event

    def _failed(self, job: ResponseJob, code: str, message: str) -> list[dict[str, Any]]:
        """The open item closed as incomplete, then ``response.failed``."""
        events = job.builder.close(status="incomplete")
        job.body["status"] = "failed"
        job.body["error"] = {"code": code, "message": message}
        failed = job.builder.snapshot("response.failed")
        failed["response"] = visible_response(failed["response"], job.include)
        return [*events, failed]

    def _appended(self, job: ResponseJob) -> list[ItemRow]:
        """What a finished response adds to its conversation: its input and output."""
        conversation = job.request.conversation_id
        if conversation is None or job.body["status"] not in ("completed", "incomplete"):
            return []
        items = [*job.input_items, *job.body["output"]]
        return item_rows(job.principal.tenant, conversation, items, self._clock())

    async def _save(self, job: ResponseJob) -> None:
        if not job.body["store"]:
            return
        background = bool(job.request.background)
        row = ResponseRow(
            id=job.id,
            tenant=job.principal.tenant,
            created_at=job.created_at,
            status=job.body["status"],
            model=job.request.model,
            previous_response_id=job.request.previous_response_id,
            conversation_id=job.request.conversation_id,
            background=background,
            body=job.body,
            include=list(job.include),
            request=job.request.model_dump(mode="json", by_alias=True, exclude_none=True)
            if background
            else None,
            principal=principal_snapshot(job.principal) if background else None,
            attempts=0,
        )
        inputs = item_rows(job.principal.tenant, job.id, job.input_items, self._clock())
        appended = [] if background else self._appended(job)
        owner = content_owner(
            job.principal, "response", job.id, job.created_at, request_user(job.request)
        )
        await self._store.save_response(row, inputs, appended, owner)

    # Background responses ------------------------------------------------------------

    def attach(self, workers: RunWorkers[ResponseRow]) -> None:
        """The workers that execute background responses (built after this service)."""
        self._workers = workers

    async def enqueue(self, job: ResponseJob) -> dict[str, Any]:
        """Store a background response as queued; the workers take it from there."""
        await self._save(job)
        if self._workers is not None:
            self._workers.wake()
        return visible_response(job.body, job.include)

    async def run_background(self, row: ResponseRow) -> None:
        """Execute a claimed background response; its events are stored as they come (so
        its stream can be followed from any process), its end written if still ours."""
        assert row.request is not None and row.principal is not None
        request = CreateResponseRequest.model_validate(row.request)
        body = {**row.body, "output": [], "status": "in_progress"}
        body.pop("usage", None)
        try:
            principal = await self._principals.current(row.principal)
            fitted = await self._messages(
                principal, request, await self._store.items_of(row.id), row.id
            )
            messages, input_items, compaction = (
                fitted.messages,
                fitted.input_items,
                fitted.compaction,
            )
        except PortwayError as error:
            await self.fail_background(row.id, row.owner, error.message)
            return
        messages, input_items, compaction = fitted.messages, fitted.input_items, fitted.compaction
        job = ResponseJob(
            id=row.id,
            principal=principal,
            request=request,
            body=body,
            messages=messages,
            include=tuple(row.include),
            input_items=input_items,
            created_at=row.created_at,
            compaction=compaction,
        )
        pending: list[dict[str, Any]] = []
        async for event in self._events(job):
            pending.append(event)
            if not event["type"].endswith(".delta") or len(pending) >= EVENT_BATCH:
                await self._store.append_events(row.id, pending)
                pending = []
        if pending:
            await self._store.append_events(row.id, pending)
        await self._store.update_response(
            row.id,
            {"status": job.body["status"], "body": job.body, "owner": None, "lease_until": None},
            statuses=("in_progress",),
            owner=row.owner,
            conversation_items=self._appended(job),
        )

    async def fail_background(
        self,
        response_id: str,
        owner: str | None,
        message: str,
        *,
        code: str = "server_error",
        statuses: Sequence[str] = ("in_progress", "queued"),
    ) -> ResponseRow | None:
        """Fail a background response in one of ``statuses`` held by ``owner``."""
        row = await self._store.get_by_id(response_id)
        if row is None:
            return None
        body = {**row.body, "status": "failed", "error": {"code": code, "message": message}}
        return await self._store.update_response(
            response_id,
            {"status": "failed", "body": body, "owner": None, "lease_until": None},
            statuses=statuses,
            owner=owner,
        )

    async def cancel_background(
        self, response_id: str, owner: str | None, *, statuses: Sequence[str]
    ) -> ResponseRow | None:
        """Cancel a background response in one of ``statuses`` held by ``owner``."""
        row = await self._store.get_by_id(response_id)
        if row is None:
            return None
        body = {**row.body, "status": "cancelled"}
        return await self._store.update_response(
            response_id,
            {"status": "cancelled", "body": body, "owner": None, "lease_until": None},
            statuses=statuses,
            owner=owner,
        )

    async def cancel(self, principal: Principal, response_id: str) -> dict[str, Any]:
        row = await self._store.get_response(principal.tenant, response_id)
        if row is None:
            raise missing("response", response_id)
        if not row.background:
            raise InvalidRequestError(
                "Cannot cancel a synchronous response.", param=None, code="invalid_request"
            )
        if row.status in ACTIVE:
            updated = await self.cancel_background(response_id, None, statuses=ACTIVE)
            if updated is not None:
                row = updated
                if self._workers is not None:
                    self._workers.request_cancel(response_id)
            else:
                row = await self._store.get_response(principal.tenant, response_id) or row
        return _visible_row(row)

    async def resume(
        self, principal: Principal, response_id: str, starting_after: int
    ) -> AsyncIterator[ServerSentEvent]:
        """A background response's stream from after event ``starting_after``, followed
        until the response ends (its events are read from the database)."""
        row = await self._store.get_response(principal.tenant, response_id)
        if row is None:
            raise missing("response", response_id)
        if not row.background:
            raise InvalidRequestError(
                "Only background responses can be streamed again.",
                param="stream",
                code="invalid_value",
            )
        return self._follow(principal.tenant, response_id, starting_after)

    async def _follow(
        self, tenant: str, response_id: str, last: int
    ) -> AsyncIterator[ServerSentEvent]:
        while True:
            row = await self._store.get_response(tenant, response_id)
            events = await self._store.events_after(response_id, last)
            for event in events:
                last = event["sequence_number"]
                yield ServerSentEvent(event["type"], event)
            if row is None or (row.status not in ACTIVE and not events):
                return
            if not events:
                await asyncio.sleep(self._poll_seconds)

    # Reading -------------------------------------------------------------------------

    async def get(
        self, principal: Principal, response_id: str, include: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The stored response (a running background one with its output so far);
        ``include`` adds to what its creation asked to include."""
        row = await self._store.get_response(principal.tenant, response_id)
        if row is None:
            raise missing("response", response_id)
        if row.background and row.status == "in_progress":
            # Its row is written when it ends; what it produced so far is in its events.
            events = await self._store.events_after(row.id, -1)
            body = {**row.body, "output": output_so_far(events), "status": row.status}
            return visible_response(body, [*row.include, *include])
        return _visible_row(row, include)

    async def delete(self, principal: Principal, response_id: str) -> None:
        if not await self._store.delete_response(principal.tenant, response_id):
            raise missing("response", response_id)

    async def input_items(
        self, principal: Principal, response_id: str, page: PageRequest
    ) -> Page[ItemRow]:
        if await self._store.get_response(principal.tenant, response_id) is None:
            raise missing("response", response_id)
        return await self._store.list_items(principal.tenant, response_id, page)

    async def input_tokens(self, principal: Principal, request: InputTokensRequest) -> int:
        """The input tokens a response with this request would send (the model's tokenizer)."""
        self._check_model(principal, request.model)
        as_response = CreateResponseRequest.model_validate(
            {**request.model_dump(exclude_none=True, by_alias=True), "input": request.input or []}
        )
        history = await self._history(
            principal, request.previous_response_id, as_response.conversation_id
        )
        head = [{"role": "system", "content": request.instructions}] if request.instructions else []
        input_items = resolve_references(stored_items(as_response.input or []), history)
        self._compaction.verify(principal, input_items)
        context = self._compaction.expand(principal, [*history, *input_items])
        messages = [*head, *chat_messages(context)]
        if not messages:
            return 0
        chat = chat_request(
            as_response, messages, max_output_tokens=None, builtins=True, tool_called=False
        )
        return await self._context.count(request.model, chat)

    async def compact(self, principal: Principal, request: CompactRequest) -> dict[str, Any]:
        """``POST /v1/responses/compact``: the context summarized, as a compaction item."""
        self._check_model(principal, request.model)
        history = await self._history(principal, request.previous_response_id, None)
        input_items = resolve_references(stored_items(request.input or []), history)
        self._compaction.verify(principal, input_items)
        head = [{"role": "system", "content": request.instructions}] if request.instructions else []
        messages = [
            *head,
            *chat_messages(self._compaction.expand(principal, [*history, *input_items])),
        ]
        if not messages:
            raise InvalidRequestError(
                "Nothing to compact: give 'input' or 'previous_response_id'.",
                param="input",
                code="missing_required_parameter",
            )
        chat = ChatCompletionRequest.model_validate({"model": request.model, "messages": messages})
        budget = self._context.window_limit(request.model, None)
        response_id = new_id("resp")
        compacted = await self._compaction.compact_chat(
            principal, chat, budget or 2**31, response_id, everything=True
        )
        return compaction_object(compacted, response_id)


def _visible_row(row: ResponseRow, include: Sequence[str] = ()) -> dict[str, Any]:
    """A stored response as the client sees it (a background one's status is the row's)."""
    return {**visible_response(row.body, [*row.include, *include]), "status": row.status}


def _check_tool_choice(request: CreateResponseRequest) -> None:
    choice = request.tool_choice
    if not isinstance(choice, ToolChoiceFunction):
        return
    names = {tool.name for tool in request.tools or () if isinstance(tool, FunctionTool)}
    if choice.name not in names:
        raise InvalidRequestError(
            f"Tool choice '{choice.name}' not found in 'tools' parameter.",
            param="tool_choice",
            code="invalid_value",
        )
