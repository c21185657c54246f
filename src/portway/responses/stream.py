"""The typed events of a response as it is built, in OpenAI's order.

Contract: ``OutputBuilder`` owns the response's ``output`` list and numbers every event
(``sequence_number`` strictly increasing from 0). Text opens a ``message`` item
(``output_item.added``, ``content_part.added``) and streams ``output_text.delta``; a tool
call opens a ``function_call`` item and streams its arguments. ``close()`` finishes the
open item (``…done`` events, then ``output_item.done``). Built-in tool calls are shown
whole once they ran (``builtin_call``), with their in-progress/searching/interpreting
and completed events.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from portway.assistants.ids import new_id
from portway.assistants.tools import CitedFile, annotations_for
from portway.responses.items import output_text

Event = dict[str, Any]


@dataclass
class _OpenItem:
    index: int
    item: dict[str, Any]
    text: str = ""


@dataclass(frozen=True, slots=True)
class Source:
    """A file_search result the model may cite as ``[n]`` (n = its place in the list)."""

    file_id: str
    filename: str


def file_citations(text: str, sources: list[Source]) -> list[dict[str, Any]]:
    """``file_citation`` annotations for the ``[n]`` markers of ``text`` that name a source."""
    by_id = {source.file_id: source for source in sources}
    cited = [CitedFile(source.file_id, "") for source in sources]
    return [
        {
            "type": "file_citation",
            "file_id": found["file_citation"]["file_id"],
            "index": found["start_index"],
            "filename": by_id[found["file_citation"]["file_id"]].filename,
        }
        for found in annotations_for(text, cited, ())
    ]


@dataclass
class OutputBuilder:
    body: dict[str, Any]
    # Every file_search result of the response so far, numbered as the model saw them.
    sources: list[Source] = field(default_factory=list)
    # Events are kept (streamed, stored): they get copies, which later changes of the
    # body leave alone. Otherwise they are dropped at once and need none.
    keep: bool = True
    _numbers: itertools.count[int] = field(default_factory=itertools.count)
    _open: _OpenItem | None = None

    def event(self, kind: str, **fields: Any) -> Event:
        return {"type": kind, **fields, "sequence_number": next(self._numbers)}

    def snapshot(self, kind: str) -> Event:
        """An event carrying the whole response (``response.created``, ``…completed``)."""
        return self.event(kind, response=self._copy(self.body))

    def _copy(self, value: dict[str, Any]) -> dict[str, Any]:
        return _copy(value) if self.keep else value

    def _add(self, item: dict[str, Any]) -> tuple[int, Event]:
        self.body["output"].append(item)
        index = len(self.body["output"]) - 1
        return index, self.event(
            "response.output_item.added", output_index=index, item=self._copy(item)
        )

    def item(self, item: dict[str, Any]) -> list[Event]:
        """A finished item added whole (a ``compaction`` item)."""
        events = self.close()
        index, added = self._add(item)
        events.append(added)
        events.append(
            self.event("response.output_item.done", output_index=index, item=self._copy(item))
        )
        return events

    # Text --------------------------------------------------------------------------

    def text(self, delta: str) -> list[Event]:
        events: list[Event] = []
        if self._open is None or self._open.item["type"] != "message":
            events += self.close()
            item = {
                "id": new_id("msg"),
                "type": "message",
                "status": "in_progress",
                "content": [],
                "role": "assistant",
            }
            index, added = self._add(item)
            self._open = _OpenItem(index, item)
            events.append(added)
            events.append(
                self.event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=output_text(""),
                )
            )
        assert self._open is not None
        self._open.text += delta
        events.append(
            self.event(
                "response.output_text.delta",
                item_id=self._open.item["id"],
                output_index=self._open.index,
                content_index=0,
                delta=delta,
                logprobs=[],
            )
        )
        return events

    # Function calls ----------------------------------------------------------------

    def function_call(self, call_id: str, name: str) -> list[Event]:
        events = self.close()
        item = {
            "id": new_id("fc"),
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": call_id,
            "name": name,
        }
        index, added = self._add(item)
        self._open = _OpenItem(index, item)
        return [*events, added]

    def arguments(self, delta: str) -> list[Event]:
        assert self._open is not None and self._open.item["type"] == "function_call"
        self._open.text += delta
        return [
            self.event(
                "response.function_call_arguments.delta",
                item_id=self._open.item["id"],
                output_index=self._open.index,
                delta=delta,
            )
        ]

    # Closing -----------------------------------------------------------------------

    def close(self, status: str = "completed") -> list[Event]:
        """Finish the open item, if any."""
        current, self._open = self._open, None
        if current is None:
            return []
        item, index = current.item, current.index
        events: list[Event] = []
        if item["type"] == "message":
            annotations = file_citations(current.text, self.sources)
            for number, annotation in enumerate(annotations):
                events.append(
                    self.event(
                        "response.output_text.annotation.added",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        annotation_index=number,
                        annotation=annotation,
                    )
                )
            part = output_text(current.text, annotations)
            events.append(
                self.event(
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    text=current.text,
                    logprobs=[],
                )
            )
            events.append(
                self.event(
                    "response.content_part.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=part,
                )
            )
            item["content"] = [part]
        else:
            item["arguments"] = current.text
            events.append(
                self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    name=item["name"],
                    output_index=index,
                    arguments=current.text,
                )
            )
        item["status"] = status
        events.append(
            self.event("response.output_item.done", output_index=index, item=self._copy(item))
        )
        return events

    # Built-in tool calls -------------------------------------------------------------

    def builtin_started(self, item: dict[str, Any]) -> tuple[int, list[Event]]:
        """A built-in call about to run: added, in progress (and searching/interpreting)."""
        events = self.close()
        index, added = self._add(item)
        kind = item["type"]
        events.append(added)
        events.append(
            self.event(f"response.{kind}.in_progress", output_index=index, item_id=item["id"])
        )
        if kind == "file_search_call":
            events.append(
                self.event(
                    "response.file_search_call.searching", output_index=index, item_id=item["id"]
                )
            )
        else:
            code = item.get("code") or ""
            events.append(
                self.event(
                    "response.code_interpreter_call_code.delta",
                    output_index=index,
                    item_id=item["id"],
                    delta=code,
                )
            )
            events.append(
                self.event(
                    "response.code_interpreter_call_code.done",
                    output_index=index,
                    item_id=item["id"],
                    code=code,
                )
            )
            events.append(
                self.event(
                    "response.code_interpreter_call.interpreting",
                    output_index=index,
                    item_id=item["id"],
                )
            )
        return index, events

    def builtin_done(
        self, index: int, item: dict[str, Any], visible: dict[str, Any]
    ) -> list[Event]:
        self.body["output"][index] = item
        return [
            self.event(
                f"response.{item['type']}.completed", output_index=index, item_id=item["id"]
            ),
            self.event("response.output_item.done", output_index=index, item=self._copy(visible)),
        ]


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    """A deep enough copy: events must not change when the body changes later."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            out[key] = _copy(item)
        elif isinstance(item, list):
            out[key] = [_copy(x) if isinstance(x, dict) else x for x in item]
        else:
            out[key] = item
    return out
