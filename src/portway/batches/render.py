"""A batch row as OpenAI's ``Batch`` object (timestamps in whole seconds; fields without
a value are left out, as the spec's types are not nullable)."""

from __future__ import annotations

from typing import Any, cast

from portway.protocol.batches import BatchDict
from portway.store.models.batches import BatchRow

_TIMESTAMPS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def batch_object(row: BatchRow) -> BatchDict:
    rendered: dict[str, Any] = {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": row.status,
        "created_at": int(row.created_at),
        "request_counts": {"total": row.total, "completed": row.completed, "failed": row.failed},
        "usage": {
            "input_tokens": row.input_tokens,
            "input_tokens_details": {"cached_tokens": row.cached_tokens},
            "output_tokens": row.output_tokens,
            "output_tokens_details": {"reasoning_tokens": row.reasoning_tokens},
            "total_tokens": row.input_tokens + row.output_tokens,
        },
        "metadata": dict(row.meta or {}),
    }
    if row.model:
        rendered["model"] = row.model
    if row.errors:
        rendered["errors"] = {"object": "list", "data": list(row.errors)}
    for name in ("output_file_id", "error_file_id"):
        if getattr(row, name):
            rendered[name] = getattr(row, name)
    for name in _TIMESTAMPS:
        value = getattr(row, name)
        if value is not None:
            rendered[name] = int(value)
    return cast(BatchDict, rendered)
