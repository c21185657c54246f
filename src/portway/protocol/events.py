"""A named server-sent event (``event: <name>`` + ``data: <json>``), as the stateful APIs stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """``data`` is JSON-encoded, except a ``str`` which is sent as is (e.g. ``[DONE]``)."""

    event: str
    data: Any
