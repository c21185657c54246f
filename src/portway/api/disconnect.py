"""Stop work for a client that has gone away.

Contract: ``unless_disconnected(receive, work)`` awaits ``work`` unless the client
disconnects first; then ``work`` is cancelled (a local model stops at its next token, an
upstream call is dropped, the pipeline's ``finally`` stages record a 499) and
``ClientGone`` is raised once it has finished. Call it once the request body has been
read: from then on the only message ``receive`` can deliver is ``http.disconnect``.

``work`` runs in the caller's task. Watching for the disconnect takes a task of its own,
started only once ``work`` has run for ``WATCH_AFTER`` seconds: an answer faster than
that costs no task at all, and a client that leaves sooner is noticed then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

T = TypeVar("T")

WATCH_AFTER = 0.02


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


async def wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class _Watch:
    """Cancels ``task`` when the client disconnects, once ``start`` was called."""

    __slots__ = ("_receive", "_task", "_watcher", "gone")

    def __init__(self, receive: Receive, task: asyncio.Task[object]) -> None:
        self._receive = receive
        self._task = task
        self._watcher: asyncio.Task[None] | None = None
        self.gone = False

    def start(self) -> None:
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        await wait_for_disconnect(self._receive)
        self.gone = True
        self._task.cancel()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """The result of ``work``; ``ClientGone`` (with ``work`` cancelled) if the client left."""
    task = asyncio.current_task()
    assert task is not None, "unless_disconnected runs in a task"
    watch = _Watch(receive, task)
    timer = asyncio.get_running_loop().call_later(WATCH_AFTER, watch.start)
    try:
        return await work
    except asyncio.CancelledError:
        if watch.gone:
            task.uncancel()
            raise ClientGone from None
        raise
    finally:
        timer.cancel()
        watch.stop()
