"""A running background response's output so far, folded from its stored stream events."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any


def output_so_far(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``output`` the events describe: finished items whole, the open one with the
    text or arguments streamed into it (a new attempt's ``response.created`` starts over)."""
    output: list[dict[str, Any]] = []
    for event in events:
        kind = event["type"]
        if kind == "response.created":
            output = []
        elif kind in ("response.output_item.added", "response.output_item.done"):
            index = event["output_index"]
            while len(output) <= index:
                output.append({})
            output[index] = copy.deepcopy(event["item"])
        elif kind == "response.content_part.added":
            _item(output, event).setdefault("content", []).append(copy.deepcopy(event["part"]))
        elif kind == "response.output_text.delta":
            parts = _item(output, event).get("content") or []
            if event["content_index"] < len(parts):
                part = parts[event["content_index"]]
                part["text"] = part.get("text", "") + event["delta"]
        elif kind == "response.function_call_arguments.delta":
            item = _item(output, event)
            item["arguments"] = item.get("arguments", "") + event["delta"]
    return [item for item in output if item]


def _item(output: list[dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
    index = event["output_index"]
    return output[index] if index < len(output) else {}
