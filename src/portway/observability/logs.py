"""Logging set-up: plain text, or one JSON object per line (``log_format: json``).

A JSON line carries the time, level, logger and message, and, for a line logged while a
request is served, its ``request_id`` and ``trace_id`` (the ones in the request log and
in the exported spans). Portway's log messages never hold prompts or answers.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any, TextIO

import orjson

from portway.observability.trace import current_trace

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace = current_trace()
        if trace is not None:
            payload["request_id"] = trace.request_id
            payload["trace_id"] = trace.ensure_trace_id()
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload).decode()


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """The root logger's one handler, in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
