"""Stored rows → OpenAI objects (fields in the spec's order; timestamps as whole seconds)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from portway.assistants.wire import AssistantObject
from portway.protocol.assistants import (
    RUN_TERMINAL,
    DeletedObject,
    MessageObject,
    RunObject,
    RunStepObject,
    ThreadObject,
)
from portway.records import copy_as
from portway.store.models.assistants import (
    AssistantRow,
    MessageRow,
    RunRow,
    RunStepRow,
    ThreadRow,
)

# `include[]` value that keeps file_search result contents in run steps.
FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def _seconds(value: float | None) -> int | None:
    return None if value is None else int(value)


def assistant_object(row: AssistantRow) -> AssistantObject:
    return copy_as(
        AssistantObject,
        row,
        object="assistant",
        created_at=int(row.created_at),
        tool_resources=row.tool_resources or {},
        metadata=row.meta or {},
        response_format=row.response_format if row.response_format is not None else "auto",
    )


def thread_object(row: ThreadRow) -> ThreadObject:
    return copy_as(
        ThreadObject,
        row,
        object="thread",
        created_at=int(row.created_at),
        tool_resources=row.tool_resources or {},
        metadata=row.meta or {},
    )


def message_object(row: MessageRow) -> MessageObject:
    return copy_as(
        MessageObject,
        row,
        object="thread.message",
        created_at=int(row.created_at),
        completed_at=_seconds(row.completed_at),
        incomplete_at=_seconds(row.incomplete_at),
        attachments=row.attachments or [],
        metadata=row.meta or {},
    )


def run_object(row: RunRow) -> RunObject:
    return copy_as(
        RunObject,
        row,
        object="thread.run",
        created_at=int(row.created_at),
        expires_at=_seconds(row.expires_at),
        started_at=_seconds(row.started_at),
        cancelled_at=_seconds(row.cancelled_at),
        failed_at=_seconds(row.failed_at),
        completed_at=_seconds(row.completed_at),
        metadata=row.meta or {},
        usage=row.usage if row.status in RUN_TERMINAL else None,
        tool_choice=row.tool_choice if row.tool_choice is not None else "auto",
        response_format=row.response_format if row.response_format is not None else "auto",
    )


def _without_search_contents(details: dict[str, Any]) -> dict[str, Any]:
    if not any(call.get("type") == "file_search" for call in details.get("tool_calls") or ()):
        return details
    details = copy.deepcopy(details)
    for call in details["tool_calls"]:
        for result in (call.get("file_search") or {}).get("results") or ():
            result.pop("content", None)
    return details


def step_object(row: RunStepRow, include: Sequence[str] = ()) -> RunStepObject:
    details = row.step_details
    if FILE_SEARCH_CONTENT not in include:
        details = _without_search_contents(details)
    return copy_as(
        RunStepObject,
        row,
        object="thread.run.step",
        created_at=int(row.created_at),
        step_details=details,
        expired_at=_seconds(row.expired_at),
        cancelled_at=_seconds(row.cancelled_at),
        failed_at=_seconds(row.failed_at),
        completed_at=_seconds(row.completed_at),
        metadata=row.meta or {},
    )


def deleted_object(object_id: str, kind: str) -> DeletedObject:
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}
