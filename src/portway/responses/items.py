"""Items: a request's input as stored and listed (OpenAI's item shapes, each with an id),
and items as the chat messages a model call is made of.

Contract: ``stored_items`` turns validated input (a string or a list of items) into the
item resources ``input_items`` lists; ``chat_messages`` turns stored items (earlier input
and output included) into chat-completions messages. Tool call ids pass through as the
model gave them (``call_id``), so providers with their own id formats (Anthropic's
``toolu_…``) see their own ids again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from pydantic import BaseModel

from portway.assistants.ids import new_id
from portway.errors import InvalidRequestError
from portway.protocol.responses import (
    CodeInterpreterCallItem,
    CompactionItem,
    FileSearchCallItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFilePart,
    InputImagePart,
    InputItem,
    InputTextPart,
    ItemReference,
    MessageItem,
    OutputTextPart,
    ReasoningItem,
    RefusalPart,
)

# An opened compaction item while a model's context is built: its summary and the chat
# messages sealed with it (never stored nor shown).
SUMMARY_ITEM = "portway.summary"
SUMMARY_HEADER = "Summary of the earlier conversation:"

_ID_PREFIX = {
    "compaction": "cmp",
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}


def output_text(text: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "annotations": annotations or [], "logprobs": [], "text": text}


def _part(part: BaseModel, role: str) -> dict[str, Any]:
    if isinstance(part, InputTextPart):
        if role == "assistant":
            return output_text(part.text)
        return {"type": "input_text", "text": part.text}
    if isinstance(part, OutputTextPart):
        return output_text(part.text, part.annotations)
    if isinstance(part, RefusalPart):
        return {"type": "refusal", "refusal": part.refusal}
    if isinstance(part, InputImagePart):
        return {
            "type": "input_image",
            "detail": part.detail or "auto",
            "file_id": part.file_id,
            "image_url": part.image_url,
        }
    assert isinstance(part, InputFilePart)
    return part.model_dump(exclude_none=True)


def _content(content: str | Sequence[BaseModel], role: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [output_text(content) if role == "assistant" else _part_text(content)]
    return [_part(part, role) for part in content]


def _part_text(text: str) -> dict[str, Any]:
    return {"type": "input_text", "text": text}


def stored_item(item: BaseModel) -> dict[str, Any]:
    """One validated input item as its item resource (an id given when it had none)."""
    kind = item.type
    item_id = getattr(item, "id", None) or new_id(_ID_PREFIX.get(kind, "item"))
    if isinstance(item, MessageItem):
        return {
            "id": item_id,
            "type": "message",
            "status": item.status or "completed",
            "role": item.role,
            "content": _content(item.content, item.role),
        }
    if isinstance(item, FunctionCallItem):
        return {
            "id": item_id,
            "type": "function_call",
            "status": item.status or "completed",
            "arguments": item.arguments,
            "call_id": item.call_id,
            "name": item.name,
        }
    if isinstance(item, FunctionCallOutputItem):
        output = item.output
        if not isinstance(output, str):
            output = "".join(getattr(part, "text", "") for part in output)
        return {
            "id": item_id,
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": output,
            "status": item.status or "completed",
        }
    if isinstance(item, ReasoningItem):
        return {"id": item_id, "type": "reasoning", "summary": item.summary}
    if isinstance(item, ItemReference):
        return {"id": item.id, "type": "item_reference"}  # resolved by resolve_references
    if isinstance(item, CompactionItem):
        return {"id": item_id, "type": "compaction", "encrypted_content": item.encrypted_content}
    assert isinstance(item, FileSearchCallItem | CodeInterpreterCallItem)
    return {**item.model_dump(by_alias=True), "id": item_id}


def stored_items(value: str | Sequence[InputItem]) -> list[dict[str, Any]]:
    """A request's ``input`` as item resources."""
    if isinstance(value, str):
        return [
            {
                "id": new_id("msg"),
                "type": "message",
                "status": "completed",
                "role": "user",
                "content": [_part_text(value)],
            }
        ]
    return [stored_item(item) for item in value]


def resolve_references(
    items: Sequence[dict[str, Any]], history: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``items`` with each ``item_reference`` replaced by the earlier item it names (of the
    chained responses or the conversation); a reference to nothing there is a 400."""
    if not any(item["type"] == "item_reference" for item in items):
        return list(items)
    earlier = {item["id"]: item for item in history if "id" in item}
    resolved: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if item["type"] != "item_reference":
            resolved.append(item)
            continue
        found = earlier.get(item["id"])
        if found is None:
            raise InvalidRequestError(
                f"Item with id '{item['id']}' not found among the items of the previous "
                "response or the conversation.",
                param=f"input[{index}].id",
                code="invalid_value",
            )
        resolved.append(found)
    return resolved


# Items → chat messages --------------------------------------------------------------


def _text_of(parts: Iterable[dict[str, Any]]) -> str:
    return "".join(
        part.get("text") or part.get("refusal") or ""
        for part in parts
        if part.get("type") in ("input_text", "output_text", "refusal")
    )


def _user_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "input_text":
        return {"type": "text", "text": part["text"]}
    if kind == "input_image":
        if not part.get("image_url"):
            raise InvalidRequestError(
                "input_image parts need an 'image_url' (a URL or a data URL) on this server.",
                param="input",
                code="unsupported_value",
            )
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {k: v for k, v in part.items() if k in ("file_id", "filename", "file_data")}
        return {"type": "file", "file": file}
    return {"type": "text", "text": _text_of([part])}


def _tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _append_call(out: list[dict[str, Any]], call: dict[str, Any]) -> None:
    """Calls of one model turn go in one assistant message (parallel calls stay together)."""
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        return
    out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _results_text(item: dict[str, Any]) -> str:
    results = item.get("results") or []
    if not results:
        return "No results."
    return "\n\n".join(
        f"[{number}] {result.get('filename', '')}\n{result.get('text', '')}"
        for number, result in enumerate(results, start=1)
    )


def _logs_text(item: dict[str, Any]) -> str:
    return "\n".join(
        output.get("logs", "")
        for output in item.get("outputs") or ()
        if output.get("type") == "logs"
    )


def chat_messages(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored items as chat messages (reasoning items are left out)."""
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            role, parts = item["role"], item.get("content") or []
            if role == "user":
                converted = [_user_part(part) for part in parts]
                if all(part["type"] == "text" for part in converted):
                    out.append({"role": "user", "content": "".join(p["text"] for p in converted)})
                else:
                    out.append({"role": "user", "content": converted})
            else:
                # developer messages go as system: every provider has a system prompt.
                chat_role = "assistant" if role == "assistant" else "system"
                out.append({"role": chat_role, "content": _text_of(parts)})
        elif kind == "function_call":
            _append_call(out, _tool_call(item["call_id"], item["name"], item["arguments"]))
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        elif kind == "file_search_call":
            query = " ".join(item.get("queries") or ())
            arguments = orjson.dumps({"query": query}).decode()
            _append_call(out, _tool_call(item["id"], "file_search", arguments))
            out.append({"role": "tool", "tool_call_id": item["id"], "content": _results_text(item)})
        elif kind == SUMMARY_ITEM:  # an opened compaction item (``responses.compaction``)
            out.append({"role": "system", "content": f"{SUMMARY_HEADER}\n{item['summary']}"})
            out.extend(dict(message) for message in item["messages"])
        elif kind == "code_interpreter_call":
            arguments = orjson.dumps({"code": item.get("code") or ""}).decode()
            _append_call(out, _tool_call(item["id"], "code_interpreter", arguments))
            out.append({"role": "tool", "tool_call_id": item["id"], "content": _logs_text(item)})
    return out
