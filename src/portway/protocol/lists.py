"""OpenAI's list envelope, shared by every cursor-paginated listing (assistants, threads'
messages, runs, run steps, files, vector stores and their files)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypedDict


class ListObject(TypedDict):
    object: Literal["list"]
    data: list[Any]
    first_id: str | None
    last_id: str | None
    has_more: bool


def list_object(data: Sequence[Any], has_more: bool) -> ListObject:
    """``data``: the page's rendered objects (each with its ``id``), in list order."""
    return {
        "object": "list",
        "data": list(data),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
