"""Runs as the API sees them: create (also with a new thread), read, modify, cancel,
submit tool outputs, list steps, and follow a run's event stream.

Contract: a created run is ``queued`` and executed by a background worker; with
``stream`` it is reserved for this process, which executes it and streams its events
(``thread.run.created``, ``thread.run.queued``, then everything the engine publishes)
until the run rests, then ``done``. A run's model, instructions and tools are fixed at
creation from the request and its assistant, so later edits to the assistant do not
change it. Tool outputs must answer exactly the calls the run waits for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from pydantic import BaseModel

from portway.assistants.events import DONE, RESTING_EVENTS, RunEvents, run_event
from portway.assistants.ids import new_id
from portway.assistants.lifecycle import RunLifecycle
from portway.assistants.objects import ObjectService, dump, dump_all, new_message
from portway.assistants.principals import principal_snapshot
from portway.assistants.render import run_object, step_object, thread_object
from portway.assistants.workers import RunWorkers
from portway.config import AssistantsConfig
from portway.errors import InvalidRequestError, NotFoundError
from portway.protocol.assistants import (
    RUN_TERMINAL,
    CreateRunRequest,
    CreateThreadAndRunRequest,
    SubmitToolOutputsRunRequest,
)
from portway.protocol.events import ServerSentEvent
from portway.security.principal import Principal
from portway.store.assistants import AssistantStore, RunStore
from portway.store.models.assistants import AssistantRow, RunRow, RunStepRow, ThreadRow
from portway.store.pagination import Page, PageRequest

DEFAULT_TRUNCATION = {"type": "auto", "last_messages": None}
RunRequest = CreateRunRequest | CreateThreadAndRunRequest


class RunService:
    def __init__(
        self,
        *,
        objects: ObjectService,
        store: AssistantStore,
        runs: RunStore,
        lifecycle: RunLifecycle,
        workers: RunWorkers,
        events: RunEvents,
        config: AssistantsConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._objects = objects
        self._store = store
        self._runs = runs
        self._lifecycle = lifecycle
        self._workers = workers
        self._events = events
        self._config = config
        self._clock = clock

    # Creating runs ------------------------------------------------------------------

    async def create(
        self, principal: Principal, thread_id: str, request: CreateRunRequest
    ) -> RunRow:
        thread = await self._objects.get_thread(principal, thread_id)
        assistant = await self._assistant(principal, request.assistant_id)
        await self._objects.ensure_idle(thread.id)
        now = self._clock()
        messages = [
            new_message(principal.tenant, thread.id, message, now)
            for message in request.additional_messages or ()
        ]
        run = self._new_run(principal, thread.id, assistant, request, now)
        await self._objects.index_attachments(thread, messages, stored=True)
        await self._runs.create(run, messages)
        if not request.stream:
            self._workers.wake()
        return run

    async def create_thread_and_run(
        self, principal: Principal, request: CreateThreadAndRunRequest
    ) -> tuple[RunRow, ThreadRow]:
        """The run and its new thread."""
        assistant = await self._assistant(principal, request.assistant_id)
        thread, messages = self._objects.new_thread(
            principal, request.thread, request.tool_resources
        )
        run = self._new_run(principal, thread.id, assistant, request, self._clock())
        await self._objects.index_attachments(thread, messages, stored=False)
        await self._store.create_thread(thread, messages)
        await self._runs.create(run)
        if not request.stream:
            self._workers.wake()
        return run, thread

    def _new_run(
        self,
        principal: Principal,
        thread_id: str,
        assistant: AssistantRow,
        request: RunRequest,
        now: float,
    ) -> RunRow:
        model = request.model or assistant.model
        self._objects.check_model(principal, model)
        instructions = (
            request.instructions if request.instructions is not None else assistant.instructions
        ) or ""
        extra = getattr(request, "additional_instructions", None)
        if extra:
            instructions = f"{instructions}\n\n{extra}" if instructions else extra
        reserved = bool(request.stream)
        return RunRow(
            id=new_id("run"),
            tenant=principal.tenant,
            thread_id=thread_id,
            assistant_id=assistant.id,
            created_at=now,
            status="queued",
            model=model,
            instructions=instructions,
            tools=dump_all(request.tools) if request.tools is not None else assistant.tools,
            meta=request.metadata or {},
            temperature=request.temperature
            if request.temperature is not None
            else assistant.temperature,
            top_p=request.top_p if request.top_p is not None else assistant.top_p,
            max_prompt_tokens=request.max_prompt_tokens,
            max_completion_tokens=request.max_completion_tokens,
            truncation_strategy=(
                {**DEFAULT_TRUNCATION, **dump(request.truncation_strategy)}
                if request.truncation_strategy is not None
                else dict(DEFAULT_TRUNCATION)
            ),
            tool_choice=_wire(request.tool_choice),
            parallel_tool_calls=request.parallel_tool_calls,
            response_format=_wire(request.response_format)
            if request.response_format is not None
            else assistant.response_format,
            reasoning_effort=request.reasoning_effort or assistant.reasoning_effort,
            principal=principal_snapshot(principal),
            assistant_tool_resources=assistant.tool_resources,
            owner=self._workers.owner if reserved else None,
            lease_until=self._workers.lease_until() if reserved else None,
            attempts=0,
            prompt_tokens=0,
            completion_tokens=0,
            model_calls=0,
        )

    async def _assistant(self, principal: Principal, assistant_id: str) -> AssistantRow:
        assistant = await self._store.get_assistant(principal.tenant, assistant_id)
        if assistant is None:
            raise NotFoundError(
                f"No assistant found with id '{assistant_id}'.", param="assistant_id"
            )
        return assistant

    # Reading and modifying ----------------------------------------------------------

    async def get(self, principal: Principal, thread_id: str, run_id: str) -> RunRow:
        run = await self._runs.get(principal.tenant, thread_id, run_id)
        if run is None:
            raise NotFoundError(f"No run found with id '{run_id}'.")
        if (
            run.status == "requires_action"
            and run.expires_at is not None
            and run.expires_at <= self._clock()
        ):
            # Do not show a run as waiting once its time is up, even before the sweeper ran.
            run = await self._lifecycle.expire(run.id) or await self._runs.get_by_id(run.id) or run
        return run

    async def list(self, principal: Principal, thread_id: str, page: PageRequest) -> Page[RunRow]:
        await self._objects.get_thread(principal, thread_id)
        return await self._runs.list(principal.tenant, thread_id, page)

    async def modify(
        self, principal: Principal, thread_id: str, run_id: str, metadata: dict[str, str] | None
    ) -> RunRow:
        run = await self._runs.update_metadata(principal.tenant, thread_id, run_id, metadata or {})
        if run is None:
            raise NotFoundError(f"No run found with id '{run_id}'.")
        return run

    async def get_step(
        self, principal: Principal, thread_id: str, run_id: str, step_id: str
    ) -> RunStepRow:
        step = await self._runs.get_step(principal.tenant, thread_id, run_id, step_id)
        if step is None:
            raise NotFoundError(f"No run step found with id '{step_id}'.")
        return step

    async def list_steps(
        self, principal: Principal, thread_id: str, run_id: str, page: PageRequest
    ) -> Page[RunStepRow]:
        await self.get(principal, thread_id, run_id)
        return await self._runs.list_steps(principal.tenant, thread_id, run_id, page)

    # Cancel and tool outputs --------------------------------------------------------

    async def cancel(self, principal: Principal, thread_id: str, run_id: str) -> RunRow:
        run = await self.get(principal, thread_id, run_id)
        if run.status == "requires_action":
            return await self._lifecycle.cancel(run.id) or await self.get(
                principal, thread_id, run_id
            )
        if run.status not in ("queued", "in_progress"):
            raise InvalidRequestError(
                f"Cannot cancel run with status '{run.status}'.", param="run_id"
            )
        cancelling = await self._runs.transition(
            run.id, ("queued", "in_progress"), {"status": "cancelling"}
        )
        if cancelling is None:
            return await self.get(principal, thread_id, run_id)
        self._lifecycle.publish_run(cancelling)
        if self._workers.request_cancel(run.id) or self._workers.holds(run.id):
            return cancelling
        lease = cancelling.lease_until or 0.0
        if cancelling.owner is not None and lease > self._clock():
            return cancelling  # its worker sees the request when it renews its lease
        return await self._lifecycle.cancel(run.id) or cancelling

    async def submit_tool_outputs(
        self,
        principal: Principal,
        thread_id: str,
        run_id: str,
        request: SubmitToolOutputsRunRequest,
    ) -> tuple[RunRow, RunStepRow]:
        run = await self.get(principal, thread_id, run_id)
        if run.status != "requires_action" or not run.required_action:
            raise InvalidRequestError(
                f'Runs in status "{run.status}" do not accept tool outputs.', param="run_id"
            )
        outputs = _match_outputs(run, request)
        step = _waiting_step(await self._runs.steps_of(run.id))
        if step is None:
            raise InvalidRequestError(f"Run {run_id} has no tool calls waiting for outputs.")
        now = self._clock()
        details = dict(step.step_details)
        details["tool_calls"] = [
            {**call, "function": {**call["function"], "output": outputs[call["id"]]}}
            if call.get("type") == "function" and call["id"] in outputs
            else call
            for call in details["tool_calls"]
        ]
        model_calls = [
            {**call, "output": outputs[call["id"]]} if call["id"] in outputs else call
            for call in step.model_calls
        ]
        reserved = bool(request.stream)
        updated = await self._runs.update_step_and_run(
            step.id,
            {
                "step_details": details,
                "model_calls": model_calls,
                "status": "completed",
                "completed_at": now,
            },
            run.id,
            ("requires_action",),
            {
                "status": "queued",
                "required_action": None,
                "expires_at": None,
                "owner": self._workers.owner if reserved else None,
                "lease_until": self._workers.lease_until() if reserved else None,
            },
        )
        if updated is None:
            current = await self.get(principal, thread_id, run_id)
            raise InvalidRequestError(
                f'Runs in status "{current.status}" do not accept tool outputs.', param="run_id"
            )
        step, run = updated
        self._lifecycle.publish_step(step, "thread.run.step.completed")
        self._lifecycle.publish_run(run)
        if not reserved:
            self._workers.wake()
        return run, step

    # Streaming ----------------------------------------------------------------------

    async def stream(
        self, run: RunRow, preamble: Sequence[ServerSentEvent]
    ) -> AsyncIterator[ServerSentEvent]:
        """Execute a reserved run here and yield its events until it rests, then ``done``."""
        with self._events.follow(run.id) as queue:
            self._workers.run_reserved(run.id)
            for event in preamble:
                yield event
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self._config.lease_seconds)
                except TimeoutError:
                    # Quiet for a whole lease: check the run has not ended unseen.
                    current = await self._runs.get_by_id(run.id)
                    if current is None:
                        break
                    if current.status in RUN_TERMINAL:
                        yield ServerSentEvent(run_event(current.status), run_object(current))
                        break
                    continue
                yield event
                if event.event in RESTING_EVENTS:
                    break
        yield DONE


def created_events(run: RunRow, thread: ThreadRow | None = None) -> list[ServerSentEvent]:
    """What a stream starts with: the new thread (thread-and-run), the run created, queued."""
    events = [ServerSentEvent("thread.created", thread_object(thread))] if thread else []
    body = run_object(run)
    return [
        *events,
        ServerSentEvent("thread.run.created", body),
        ServerSentEvent("thread.run.queued", body),
    ]


def resumed_events(run: RunRow, step: RunStepRow) -> list[ServerSentEvent]:
    return [
        ServerSentEvent("thread.run.step.completed", step_object(step)),
        ServerSentEvent("thread.run.queued", run_object(run)),
    ]


def _wire(value: Any) -> Any:
    return dump(value) if isinstance(value, BaseModel) else value


def _match_outputs(run: RunRow, request: SubmitToolOutputsRunRequest) -> dict[str, str]:
    """Outputs by call id; every waiting call answered once, and nothing else."""
    waiting = [call["id"] for call in run.required_action["submit_tool_outputs"]["tool_calls"]]
    outputs: dict[str, str] = {}
    for index, item in enumerate(request.tool_outputs):
        if item.tool_call_id not in waiting:
            raise InvalidRequestError(
                f"No tool call found with id '{item.tool_call_id}'. Expected tool outputs for "
                f"call ids {waiting}.",
                param=f"tool_outputs[{index}].tool_call_id",
            )
        if item.tool_call_id in outputs:
            raise InvalidRequestError(
                f"Duplicate tool output for call id '{item.tool_call_id}'.",
                param=f"tool_outputs[{index}].tool_call_id",
            )
        outputs[item.tool_call_id] = item.output
    missing = [call_id for call_id in waiting if call_id not in outputs]
    if missing:
        raise InvalidRequestError(
            f"Expected tool outputs for call ids {waiting}, missing outputs for {missing}.",
            param="tool_outputs",
        )
    return outputs


def _waiting_step(steps: Sequence[RunStepRow]) -> RunStepRow | None:
    for step in reversed(steps):
        if step.type == "tool_calls" and step.status == "in_progress":
            return step
    return None
