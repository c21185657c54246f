"""The assistant event stream: in-process fan-out from the run engine to HTTP streams.

The engine publishes every state change of a run (``thread.run.*``, ``thread.run.step.*``,
``thread.message.*``) whether or not anyone listens; a streaming request follows the
run's events from before the run starts until the run rests (a terminal status or
``requires_action``), then ends with ``event: done`` / ``data: [DONE]``. A stream that
goes away stops following; the run goes on in the background.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from portway.protocol.events import ServerSentEvent

DONE = ServerSentEvent("done", "[DONE]")

# Run events after which the run waits for nobody but the client (or is over).
RESTING_EVENTS = frozenset(
    {
        "thread.run.requires_action",
        "thread.run.completed",
        "thread.run.incomplete",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
    }
)


def run_event(status: str) -> str:
    """The event name announcing a run's new status (``thread.run.<status>``)."""
    return f"thread.run.{status}"


class RunEvents:
    """Followers per run id; publishing is synchronous and never blocks the engine."""

    def __init__(self) -> None:
        self._followers: dict[str, set[asyncio.Queue[ServerSentEvent]]] = {}

    def publish(self, run_id: str, event: str, data: Any) -> None:
        followers = self._followers.get(run_id)
        if not followers:
            return
        item = ServerSentEvent(event, data)
        for queue in followers:
            queue.put_nowait(item)

    @contextmanager
    def follow(self, run_id: str) -> Iterator[asyncio.Queue[ServerSentEvent]]:
        """A queue receiving the run's events while the ``with`` block lasts."""
        queue: asyncio.Queue[ServerSentEvent] = asyncio.Queue()
        self._followers.setdefault(run_id, set()).add(queue)
        try:
            yield queue
        finally:
            followers = self._followers.get(run_id)
            if followers is not None:
                followers.discard(queue)
                if not followers:
                    del self._followers[run_id]

    def following(self, run_id: str) -> bool:
        return bool(self._followers.get(run_id))
