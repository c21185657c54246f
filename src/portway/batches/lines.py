"""The input file's lines (``BatchRequestInput``): parsed and checked before a batch runs.

A file is valid when every non-blank line is a JSON object with a non-empty, unique
``custom_id``, ``method`` ``POST``, the batch's ``endpoint`` as ``url`` and an object
``body``. Otherwise the batch fails with one error per bad line (the first
``MAX_REPORTED`` of them), as OpenAI reports them: ``code``, ``message``, ``line``
(1-based) and ``param``. A body's contents are the endpoint's to judge, line by line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from portway.protocol.batches import BatchErrorDict

MAX_REPORTED = 100


@dataclass(frozen=True, slots=True)
class InputLine:
    index: int  # 0-based among the request lines (blank lines are not counted)
    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ParsedFile:
    lines: list[InputLine]
    errors: list[BatchErrorDict]


def _error(code: str, message: str, line: int | None, param: str | None = None) -> BatchErrorDict:
    return {"code": code, "message": message, "param": param, "line": line}


def _check(data: Any, number: int, endpoint: str, seen: set[str]) -> BatchErrorDict | None:
    if not isinstance(data, dict):
        return _error("invalid_json_line", "This line is not a JSON object.", number)
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return _error(
            "missing_required_parameter",
            "Missing required parameter: 'custom_id' (a non-empty string).",
            number,
            "custom_id",
        )
    if custom_id in seen:
        return _error(
            "duplicate_custom_id",
            f"The custom_id '{custom_id[:64]}' is used by an earlier line; each must be unique.",
            number,
            "custom_id",
        )
    if data.get("method") != "POST":
        return _error(
            "invalid_method",
            "Invalid value for 'method': only 'POST' is supported.",
            number,
            "method",
        )
    if data.get("url") != endpoint:
        return _error(
            "mismatched_endpoint",
            f"The line's url must be the batch's endpoint '{endpoint}'.",
            number,
            "url",
        )
    if not isinstance(data.get("body"), dict):
        return _error(
            "missing_required_parameter",
            "Missing required parameter: 'body' (a JSON object).",
            number,
            "body",
        )
    return None


def parse_input(content: bytes, endpoint: str, max_lines: int) -> ParsedFile:
    """The request lines of ``content``, or the errors that fail the batch (CPU-bound: call
    it in a thread for big files)."""
    lines: list[InputLine] = []
    errors: list[BatchErrorDict] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(lines) + len(errors) >= max_lines:
            errors.append(
                _error(
                    "too_many_requests",
                    f"The input file has more than {max_lines} requests.",
                    number,
                )
            )
            break
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            error: BatchErrorDict | None = _error(
                "invalid_json_line", "This line is not valid JSON.", number
            )
        else:
            error = _check(data, number, endpoint, seen)
        if error is not None:
            if len(errors) < MAX_REPORTED:
                errors.append(error)
            continue
        seen.add(data["custom_id"])
        lines.append(InputLine(len(lines), data["custom_id"], data["body"]))
    if not lines and not errors:
        errors.append(_error("empty_file", "The input file has no requests.", None))
    return ParsedFile(lines, errors)
