"""The run engine: drives one claimed run through model calls and tools until it rests.

Contract: ``execute(run, progress)`` takes a run this worker holds (``in_progress``) and
returns when the run is completed, incomplete, failed, waiting for tool outputs
(``requires_action``), or no longer this worker's (cancelled, deleted, taken over).
Each model call is built from the database (``ContextBuilder``), so a run interrupted
at any point can be resumed by any worker. Every model call goes through the pipeline
(the internal ``ModelClient``, streamed) as the run's creator, looked up again before each call
(``RunPrincipals``: a revoked or expired key fails the run), so routing, limits, budgets
and the ledger apply. Text and tool-call deltas are published as they stream; rows are
written when a message or step opens and when it closes, not per token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import orjson

from portway.assistants.builtin import BuiltinTool, ThreadFileIndex, ToolInvocation, ToolOutcome
from portway.assistants.context import ContextBuilder, Prompt, message_text
from portway.assistants.ids import new_id
from portway.assistants.lifecycle import RunLifecycle, text_content
from portway.assistants.objects import attached_for, file_search_stores
from portway.assistants.principals import RunPrincipals
from portway.assistants.tools import (
    BUILTIN_TYPES,
    FILE_SEARCH_QUERY_MAX_CHARS,
    CitedFile,
    annotations_for,
    function_names,
    renumber_markers,
)
from portway.config import AssistantsConfig
from portway.context.policy import CONTEXT_HEADER
from portway.errors import (
    InsufficientQuotaError,
    InvalidRequestError,
    PortwayError,
    RateLimitError,
)
from portway.pipeline.client import ModelClient
from portway.protocol.assistants import RunErrorCode
from portway.protocol.chat import ChatCompletionRequest
from portway.store.assistants import AssistantStore, RunStore
from portway.store.models.assistants import MessageRow, RunRow, RunStepRow, ThreadRow

logger = logging.getLogger(__name__)

_FUNCTION = "function"


@dataclass
class Progress:
    """What the current model call has produced so far (kept if the run is cancelled)."""

    text: str = ""


@dataclass
class _CallDraft:
    position: int
    id: str
    name: str
    builtin: bool
    arguments: str = ""


@dataclass
class _Turn:
    """One model call's output and the rows opened for it."""

    prior_steps: Sequence[RunStepRow] = ()
    message: MessageRow | None = None
    message_step: RunStepRow | None = None
    message_open: bool = False
    text: str = ""
    pending_text: str = ""
    tool_step: RunStepRow | None = None
    calls: list[_CallDraft] = field(default_factory=list)
    by_index: dict[int, _CallDraft] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    # The built-in tool this call's tool_choice forces: text is held back (the model owes
    # a call, and text here is at best an unfinished one) until the answer is complete.
    forced: str | None = None


def error_code(error: PortwayError) -> RunErrorCode:
    """A pipeline error as a run's ``last_error.code``."""
    if isinstance(error, RateLimitError | InsufficientQuotaError):
        return "rate_limit_exceeded"
    if isinstance(error, InvalidRequestError):
        return "invalid_prompt"
    return "server_error"


def _initial_entry(draft: _CallDraft) -> dict[str, Any]:
    if not draft.builtin:
        return {
            "id": draft.id,
            "type": _FUNCTION,
            _FUNCTION: {"name": draft.name, "arguments": draft.arguments, "output": None},
        }
    body: dict[str, Any] = {"input": "", "outputs": []} if draft.name == "code_interpreter" else {}
    return {"id": draft.id, "type": draft.name, draft.name: body}


class RunEngine:
    """Executes runs; one instance per process, shared by all workers."""

    def __init__(
        self,
        *,
        objects: AssistantStore,
        runs: RunStore,
        lifecycle: RunLifecycle,
        models: ModelClient,
        context: ContextBuilder,
        builtin_tools: Mapping[str, BuiltinTool],
        thread_files: ThreadFileIndex,
        principals: RunPrincipals,
        config: AssistantsConfig,
        owner: str,
    ) -> None:
        self._objects = objects
        self._runs = runs
        self._lifecycle = lifecycle
        self._models = models
        self._context = context
        self._builtin_tools = builtin_tools
        self._thread_files = thread_files
        self._principals = principals
        self._config = config
        self._owner = owner

    async def execute(self, run: RunRow, progress: Progress) -> None:
        self._lifecycle.publish_run(run)
        current: RunRow | None = run
        while current is not None:
            progress.text = ""
            current = await self._turn(current, progress)

    # One model call ----------------------------------------------------------------

    async def _turn(self, run: RunRow, progress: Progress) -> RunRow | None:
        """Call the model once and act on its answer; the run to continue with, or None."""
        if run.model_calls >= self._config.max_model_calls_per_run:
            await self._lifecycle.fail(
                run.id,
                "server_error",
                f"The run made {run.model_calls} model calls without finishing "
                "(assistants.max_model_calls_per_run).",
            )
            return None
        remaining_completion = _remaining(run.max_completion_tokens, run.completion_tokens)
        remaining_prompt = _remaining(run.max_prompt_tokens, run.prompt_tokens)
        for remaining, reason in (
            (remaining_completion, "max_completion_tokens"),
            (remaining_prompt, "max_prompt_tokens"),
        ):
            if remaining is not None and remaining <= 0:
                await self._lifecycle.incomplete(run.id, reason)
                return None
        if run.model_calls == 0:
            await self._await_thread_files(run)
        history = await self._objects.thread_messages(run.thread_id)
        steps = await self._runs.steps_of(run.id)
        prompt = await self._context.build(
            run,
            history,
            steps,
            remaining_prompt=remaining_prompt,
            remaining_completion=remaining_completion,
        )
        if prompt is None:
            await self._lifecycle.incomplete(run.id, "max_prompt_tokens")
            return None
        turn = _Turn(prior_steps=steps, forced=self._forced_builtin(run, prompt.request))
        try:
            await self._call_model(run, prompt, turn, progress)
        except PortwayError as error:
            logger.info("run %s: model call failed: %s", run.id, error.message)
            await self._lifecycle.fail(
                run.id, error_code(error), error.message, partial_text=progress.text
            )
            return None
        usage = turn.usage or {}
        counted = await self._runs.transition(
            run.id,
            ("in_progress",),
            {
                "prompt_tokens": run.prompt_tokens + int(usage.get("prompt_tokens") or 0),
                "completion_tokens": run.completion_tokens
                + int(usage.get("completion_tokens") or 0),
                "model_calls": run.model_calls + 1,
            },
            owner=self._owner,
        )
        if counted is None:
            await self._lost(run.id, progress)
            return None
        run = counted
        turn_usage = _usage(usage)
        truncated = turn.finish_reason == "length"
        if turn.forced is not None and not turn.calls and not truncated:
            await self._answer_forced(run, turn, history, progress)
        if turn.message_open:
            await self._close_message(
                turn, truncated=truncated, usage=None if turn.tool_step else turn_usage
            )
        if truncated:
            await self._lifecycle.incomplete(run.id, "max_completion_tokens")
            return None
        if turn.calls:
            return await self._run_tools(run, turn, history, steps, turn_usage)
        await self._lifecycle.complete(run.id)
        return None

    async def _await_thread_files(self, run: RunRow) -> None:
        """Before a file_search run starts, let the thread's vector store finish indexing
        (message attachments), as OpenAI does; after the wait runs anyway."""
        if not any(tool.get("type") == "file_search" for tool in run.tools):
            return
        thread = await self._objects.get_thread(run.tenant, run.thread_id)
        stores = file_search_stores(thread.tool_resources if thread else None)
        if not stores:
            return
        timeout = self._config.thread_files_wait_seconds
        if not await self._thread_files.wait_indexed(run.tenant, stores, timeout):
            logger.warning(
                "run %s: the thread's files were still being indexed after %.0f s; "
                "running without waiting longer",
                run.id,
                timeout,
            )

    def _forced_builtin(self, run: RunRow, request: ChatCompletionRequest) -> str | None:
        name = request.forced_tool_name()
        return name if name in _builtin_names(run) else None

    async def _answer_forced(
        self, run: RunRow, turn: _Turn, history: Sequence[MessageRow], progress: Progress
    ) -> None:
        """The model answered without the built-in call its tool_choice forces: a
        file_search runs anyway, on the user's last message (OpenAI records one whenever
        it is forced); any other answer is shown as it came."""
        query = _last_user_text(history)[:FILE_SEARCH_QUERY_MAX_CHARS].strip()
        if turn.forced == "file_search" and query:
            logger.warning(
                "run %s: the model did not call the forced file_search; searching for the "
                "user's message",
                run.id,
            )
            arguments = orjson.dumps({"query": query}).decode()
            call = {
                "index": 0,
                "id": new_id("call"),
                "type": _FUNCTION,
                "function": {"name": "file_search", "arguments": arguments},
            }
            await self._on_tool_call(run, turn, call, {"file_search"})
            return
        turn.forced = None
        await self._on_text(run, turn, "", progress)

    async def _call_model(
        self, run: RunRow, prompt: Prompt, turn: _Turn, progress: Progress
    ) -> None:
        strategy = prompt.context_strategy
        ctx = self._models.context(
            prompt.request,
            principal=await self._principals.current(run.principal),
            request_id=run.id,
            endpoint="assistants.runs",
            headers={CONTEXT_HEADER: strategy} if strategy else None,
        )
        ctx.context_chain = run.thread_id  # summaries are kept with the thread
        # A thread's pseudonyms stay the same from run to run.
        ctx.pseudonyms_from = ctx.pseudonyms_to = run.thread_id
        builtin = _builtin_names(run)
        async with aclosing(self._models.stream(ctx)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                if chunk.get("usage"):
                    turn.usage = dict(chunk["usage"])  # type: ignore[arg-type]
                for choice in chunk["choices"]:
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if text:
                        await self._on_text(run, turn, text, progress)
                    for call in delta.get("tool_calls") or ():
                        await self._on_tool_call(run, turn, dict(call), builtin)
                    if choice.get("finish_reason"):
                        turn.finish_reason = choice["finish_reason"]
        if turn.usage is None and ctx.usage:
            turn.usage = dict(ctx.usage)

    async def _on_text(self, run: RunRow, turn: _Turn, text: str, progress: Progress) -> None:
        if not turn.message_open:
            # Whitespace before a tool call is not a message.
            turn.pending_text += text
            if turn.forced is not None or not turn.pending_text.strip():
                return
            text, turn.pending_text = turn.pending_text, ""
            await self._open_message(run, turn)
        assert turn.message is not None
        first = not turn.text
        turn.text += text
        progress.text = turn.text
        piece: dict[str, Any] = {"value": text}
        if first:
            piece["annotations"] = []
        self._lifecycle.publish_delta(
            run.id,
            "thread.message.delta",
            {
                "id": turn.message.id,
                "object": "thread.message.delta",
                "delta": {"content": [{"index": 0, "type": "text", "text": piece}]},
            },
        )

    async def _open_message(self, run: RunRow, turn: _Turn) -> None:
        now = self._lifecycle.clock()
        message = MessageRow(
            id=new_id("msg"),
            tenant=run.tenant,
            thread_id=run.thread_id,
            created_at=now,
            status="in_progress",
            role="assistant",
            content=[],
            assistant_id=run.assistant_id,
            run_id=run.id,
            attachments=[],
            meta={},
        )
        step = self._new_step(
            run,
            "message_creation",
            {"type": "message_creation", "message_creation": {"message_id": message.id}},
        )
        await self._runs.add_step(step, message)
        turn.message, turn.message_step, turn.message_open = message, step, True
        turn.text = ""
        self._lifecycle.publish_step(step, "thread.run.step.created")
        self._lifecycle.publish_step(step, "thread.run.step.in_progress")
        self._lifecycle.publish_message(message, "thread.message.created")
        self._lifecycle.publish_message(message, "thread.message.in_progress")

    async def _on_tool_call(
        self, run: RunRow, turn: _Turn, call: dict[str, Any], builtin: set[str]
    ) -> None:
        index = int(call.get("index") or 0)
        function = call.get("function") or {}
        draft = turn.by_index.get(index)
        if draft is None:
            if turn.message_open:
                # The model turned from text to tool calls: its message is done.
                await self._close_message(turn, truncated=False, usage=None)
            if turn.tool_step is None:
                step = self._new_step(run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
                await self._runs.add_step(step)
                turn.tool_step = step
                self._lifecycle.publish_step(step, "thread.run.step.created")
                self._lifecycle.publish_step(step, "thread.run.step.in_progress")
            name = function.get("name") or ""
            draft = _CallDraft(
                position=len(turn.calls),
                id=call.get("id") or new_id("call"),
                name=name,
                builtin=name in builtin,
            )
            turn.by_index[index] = draft
            turn.calls.append(draft)
            self._publish_call_delta(run, turn, {"index": draft.position, **_initial_entry(draft)})
        arguments = function.get("arguments")
        if arguments:
            draft.arguments += arguments
            if not draft.builtin:
                entry = {"type": _FUNCTION, _FUNCTION: {"arguments": arguments}}
                self._publish_call_delta(run, turn, {"index": draft.position, **entry})

    def _publish_call_delta(self, run: RunRow, turn: _Turn, entry: dict[str, Any]) -> None:
        assert turn.tool_step is not None
        self._lifecycle.publish_delta(
            run.id,
            "thread.run.step.delta",
            {
                "id": turn.tool_step.id,
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [entry]}},
            },
        )

    def _new_step(self, run: RunRow, kind: str, details: dict[str, Any]) -> RunStepRow:
        return RunStepRow(
            id=new_id("step"),
            tenant=run.tenant,
            run_id=run.id,
            thread_id=run.thread_id,
            assistant_id=run.assistant_id,
            created_at=self._lifecycle.clock(),
            type=kind,
            status="in_progress",
            step_details=details,
            meta={},
            model_calls=[],
        )

    # After the model answered ---------------------------------------------------------

    async def _close_message(
        self, turn: _Turn, *, truncated: bool, usage: dict[str, int] | None
    ) -> None:
        assert turn.message is not None and turn.message_step is not None
        turn.message_open = False
        now = self._lifecycle.clock()
        citations, created_files = _artifacts(turn.prior_steps)
        annotations = annotations_for(turn.text, citations, created_files)
        changes: dict[str, Any] = {
            "content": text_content(turn.text, annotations),
            "attachments": [
                {"file_id": file_id, "tools": [{"type": "code_interpreter"}]}
                for file_id in created_files
            ],
        }
        if truncated:
            changes |= {
                "status": "incomplete",
                "incomplete_at": now,
                "incomplete_details": {"reason": "max_tokens"},
            }
        else:
            changes |= {"status": "completed", "completed_at": now}
        message = await self._runs.update_message(turn.message.id, changes)
        if message is not None:
            event = "thread.message.incomplete" if truncated else "thread.message.completed"
            self._lifecycle.publish_message(message, event)
        step_changes: dict[str, Any] = {"status": "completed", "completed_at": now}
        if usage is not None:
            step_changes["usage"] = usage
        step = await self._runs.update_step(turn.message_step.id, step_changes)
        if step is not None:
            self._lifecycle.publish_step(step, "thread.run.step.completed")

    async def _run_tools(
        self,
        run: RunRow,
        turn: _Turn,
        history: Sequence[MessageRow],
        steps: Sequence[RunStepRow],
        usage: dict[str, int],
    ) -> RunRow | None:
        """Run built-in calls now; function calls make the run wait for the client."""
        assert turn.tool_step is not None
        step_id = turn.tool_step.id
        thread = await self._objects.get_thread(run.tenant, run.thread_id)
        cited = sum(len(call.get("citations") or ()) for s in steps for call in s.model_calls)
        entries = [_initial_entry(draft) for draft in turn.calls]
        model_calls: list[dict[str, Any]] = [
            {"id": draft.id, "name": draft.name, "arguments": draft.arguments, "output": None}
            for draft in turn.calls
        ]
        pending = [
            {
                "id": draft.id,
                "type": _FUNCTION,
                _FUNCTION: {"name": draft.name, "arguments": draft.arguments},
            }
            for draft in turn.calls
            if not draft.builtin
        ]
        if len(pending) < len(turn.calls):
            # Show the calls while built-in tools run (and if one of them fails).
            await self._runs.update_step(
                step_id,
                {
                    "step_details": {"type": "tool_calls", "tool_calls": entries},
                    "model_calls": model_calls,
                },
            )
        for position, draft in enumerate(turn.calls):
            if not draft.builtin:
                continue
            tool = self._builtin_tools.get(draft.name)
            if tool is None:
                await self._lifecycle.fail(
                    run.id,
                    "server_error",
                    f"The assistant called the {draft.name} tool, but this Portway server has "
                    f"no {draft.name} tool installed.",
                )
                return None
            outcome = await self._invoke(tool, run, thread, history, draft)
            if outcome is None:
                return None
            output = renumber_markers(outcome.output, cited, len(outcome.citations))
            cited += len(outcome.citations)
            model_calls[position] |= {
                "output": output,
                "citations": [{"file_id": c.file_id, "quote": c.quote} for c in outcome.citations],
                "created_file_ids": list(outcome.created_file_ids),
            }
            entries[position] = {
                "id": draft.id,
                "type": draft.name,
                draft.name: outcome.step_details,
            }
            self._publish_call_delta(
                run,
                turn,
                {
                    "index": draft.position,
                    "type": draft.name,
                    draft.name: _details_delta(draft.name, outcome),
                },
            )
        details = {"type": "tool_calls", "tool_calls": entries}
        now = self._lifecycle.clock()
        if not pending:
            step = await self._runs.update_step(
                step_id,
                {
                    "step_details": details,
                    "model_calls": model_calls,
                    "status": "completed",
                    "completed_at": now,
                    "usage": usage,
                },
            )
            if step is not None:
                self._lifecycle.publish_step(step, "thread.run.step.completed")
            current = await self._runs.get_by_id(run.id)
            if current is None or current.status != "in_progress" or current.owner != self._owner:
                await self._lost(run.id, Progress())
                return None
            return current
        waiting = await self._runs.update_step_and_run(
            step_id,
            {"step_details": details, "model_calls": model_calls, "usage": usage},
            run.id,
            ("in_progress",),
            {
                "status": "requires_action",
                "required_action": {
                    "type": "submit_tool_outputs",
                    "submit_tool_outputs": {"tool_calls": pending},
                },
                "expires_at": now + self._config.requires_action_expiry_seconds,
                "owner": None,
                "lease_until": None,
            },
        )
        if waiting is None:
            await self._lost(run.id, Progress())
            return None
        self._lifecycle.publish_run(waiting[1])
        return None

    async def _invoke(
        self,
        tool: BuiltinTool,
        run: RunRow,
        thread: ThreadRow | None,
        history: Sequence[MessageRow],
        draft: _CallDraft,
    ) -> ToolOutcome | None:
        try:
            arguments = orjson.loads(draft.arguments or "{}")
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            return ToolOutcome(
                output=f"Error: the {draft.name} arguments must be a JSON object.",
                step_details=_initial_entry(draft)[draft.name],
            )
        vector_stores, files = _tool_resources(run, thread, history)
        try:
            invocation = ToolInvocation(
                tenant=run.tenant,
                run_id=run.id,
                thread_id=run.thread_id,
                arguments=arguments,
                vector_store_ids=vector_stores,
                file_ids=files,
                principal=await self._principals.current(run.principal),
            )
            return await tool.invoke(invocation)
        except PortwayError as error:
            message = f"The {draft.name} tool failed: {error.message}"
            await self._lifecycle.fail(run.id, error_code(error), message)
        except Exception:
            logger.exception("run %s: the %s tool raised", run.id, draft.name)
            await self._lifecycle.fail(run.id, "server_error", f"The {draft.name} tool failed.")
        return None

    async def _lost(self, run_id: str, progress: Progress) -> None:
        """The run changed under us: finish a cancellation, or leave it to its new holder."""
        run = await self._runs.get_by_id(run_id)
        if run is not None and run.status == "cancelling":
            await self._lifecycle.cancel(run_id, partial_text=progress.text)


def _builtin_names(run: RunRow) -> set[str]:
    """The run's built-in tools (an assistant function of the same name shadows one)."""
    builtin = {t["type"] for t in run.tools if t.get("type") in BUILTIN_TYPES}
    return builtin - function_names(run.tools)


def _last_user_text(history: Sequence[MessageRow]) -> str:
    for message in reversed(history):
        if message.role == "user":
            return message_text(message.content)
    return ""


def _remaining(limit: int | None, used: int) -> int | None:
    return None if limit is None else limit - used


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _details_delta(name: str, outcome: ToolOutcome) -> dict[str, Any]:
    """The part of a built-in call's details the stream has not shown yet."""
    details = dict(outcome.step_details)
    if name == "code_interpreter":
        return {"input": details.get("input", ""), "outputs": details.get("outputs", [])}
    return details


def _artifacts(steps: Sequence[RunStepRow]) -> tuple[list[CitedFile], list[str]]:
    """The run's citations so far (numbered in order), and the files its tools created
    since its last message (they are attached to the next one)."""
    citations: list[CitedFile] = []
    created: list[str] = []
    for step in steps:
        if step.type == "message_creation":
            created = []
        for call in step.model_calls:
            citations += [
                CitedFile(cited["file_id"], cited.get("quote", ""))
                for cited in call.get("citations") or ()
            ]
            created.extend(call.get("created_file_ids") or ())
    return citations, created


def _tool_resources(
    run: RunRow, thread: ThreadRow | None, history: Sequence[MessageRow]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Vector stores for file_search and files for code_interpreter: the assistant's, the
    thread's (its store holds the messages' file_search attachments), and files attached
    to the thread's messages for code_interpreter."""
    vector_stores: list[str] = []
    files: list[str] = []
    for resources in (run.assistant_tool_resources, thread.tool_resources if thread else None):
        vector_stores += file_search_stores(resources)
        files += ((resources or {}).get("code_interpreter") or {}).get("file_ids") or []
    files += attached_for("code_interpreter", history)
    return tuple(dict.fromkeys(vector_stores)), tuple(dict.fromkeys(files))
