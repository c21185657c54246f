"""How a run ends (completed, incomplete, failed, cancelled, expired) and the events it emits.

Contract: every ending is one guarded database transition (``RunStore.finish``): it
applies only if the run is still in one of the expected statuses, so two parties racing
to end a run (a cancel request and the engine, the sweeper and a late submission) end it
once. Unfinished steps and messages are closed with the run, and ``usage`` is set to the
run's token totals. The matching events are published after the transaction commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from portway.assistants.events import RunEvents, run_event
from portway.assistants.render import message_object, run_object, step_object
from portway.protocol.assistants import RunErrorCode
from portway.store.assistants import UNEXPLAINED_FAILURE, RunStore
from portway.store.models.assistants import MessageRow, RunRow, RunStepRow


def usage_of(run: RunRow) -> dict[str, int]:
    return {
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "total_tokens": run.prompt_tokens + run.completion_tokens,
    }


def _final_usage(run: RunRow) -> dict[str, Any]:
    return {"usage": usage_of(run)}


def text_content(
    text: str, annotations: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"value": text, "annotations": annotations or []}}]


class RunLifecycle:
    """Ends runs and publishes what changed; shared by the engine, workers and API."""

    def __init__(
        self, runs: RunStore, events: RunEvents, clock: Callable[[], float] = time.time
    ) -> None:
        self.runs = runs
        self.events = events
        self.clock = clock

    # Publishing -------------------------------------------------------------------

    def publish_run(self, run: RunRow, event: str | None = None) -> None:
        self.events.publish(run.id, event or run_event(run.status), run_object(run))

    def publish_step(self, step: RunStepRow, event: str) -> None:
        self.events.publish(step.run_id, event, step_object(step))

    def publish_message(self, message: MessageRow, event: str) -> None:
        if message.run_id is not None:
            self.events.publish(message.run_id, event, message_object(message))

    def publish_delta(self, run_id: str, event: str, data: dict[str, Any]) -> None:
        self.events.publish(run_id, event, data)

    # Endings ----------------------------------------------------------------------

    async def _finish(
        self,
        run_id: str,
        expected: Sequence[str],
        changes: dict[str, Any],
        *,
        now: float,
        step_changes: dict[str, Any],
        message_reason: str,
        partial_text: str | None,
    ) -> RunRow | None:
        message_changes: dict[str, Any] = {
            "status": "incomplete",
            "incomplete_at": now,
            "incomplete_details": {"reason": message_reason},
        }
        if partial_text:
            message_changes["content"] = text_content(partial_text)
        finished = await self.runs.finish(
            run_id,
            expected,
            {**changes, "owner": None, "lease_until": None, "required_action": None},
            step_changes=step_changes,
            message_changes=message_changes,
            then=_final_usage,
        )
        if finished is None:
            return None
        run, steps, messages = finished
        for message in messages:
            self.publish_message(message, "thread.message.incomplete")
        for step in steps:
            self.publish_step(step, f"thread.run.step.{step.status}")
        self.publish_run(run)
        return run

    async def complete(self, run_id: str) -> RunRow | None:
        now = self.clock()
        return await self._finish(
            run_id,
            ("in_progress",),
            {"status": "completed", "completed_at": now, "expires_at": None},
            now=now,
            step_changes={"status": "completed", "completed_at": now},
            message_reason="run_failed",
            partial_text=None,
        )

    async def incomplete(
        self, run_id: str, reason: str, partial_text: str | None = None
    ) -> RunRow | None:
        """Stop at a token limit: ``reason`` is max_completion_tokens or max_prompt_tokens."""
        now = self.clock()
        return await self._finish(
            run_id,
            ("in_progress",),
            {"status": "incomplete", "incomplete_details": {"reason": reason}, "expires_at": None},
            now=now,
            step_changes={"status": "cancelled", "cancelled_at": now},
            message_reason="max_tokens",
            partial_text=partial_text,
        )

    async def fail(
        self,
        run_id: str,
        code: RunErrorCode,
        message: str,
        *,
        partial_text: str | None = None,
        expected: Sequence[str] = ("queued", "in_progress", "requires_action"),
    ) -> RunRow | None:
        now = self.clock()
        # An upstream error may come without a message; a failed run always says why.
        message = (message or "").strip() or UNEXPLAINED_FAILURE["message"]
        step_code = "rate_limit_exceeded" if code == "rate_limit_exceeded" else "server_error"
        return await self._finish(
            run_id,
            expected,
            {
                "status": "failed",
                "failed_at": now,
                "last_error": {"code": code, "message": message},
                "expires_at": None,
            },
            now=now,
            step_changes={
                "status": "failed",
                "failed_at": now,
                "last_error": {"code": step_code, "message": message},
            },
            message_reason="run_failed",
            partial_text=partial_text,
        )

    async def cancel(
        self,
        run_id: str,
        partial_text: str | None = None,
        *,
        expected: Sequence[str] = ("cancelling", "requires_action", "queued"),
    ) -> RunRow | None:
        """Finish a cancellation (the run is ``cancelling``, queued or waits for outputs)."""
        now = self.clock()
        return await self._finish(
            run_id,
            expected,
            {"status": "cancelled", "cancelled_at": now, "expires_at": None},
            now=now,
            step_changes={"status": "cancelled", "cancelled_at": now},
            message_reason="run_cancelled",
            partial_text=partial_text,
        )

    async def expire(self, run_id: str) -> RunRow | None:
        """A run that waited for tool outputs past its ``expires_at`` (which it keeps)."""
        now = self.clock()
        return await self._finish(
            run_id,
            ("requires_action",),
            {"status": "expired"},
            now=now,
            step_changes={"status": "expired", "expired_at": now},
            message_reason="run_expired",
            partial_text=None,
        )
