"""Stop work for a client that has gone away.

Contract: ``unless_disconnected(receive, work)`` awaits ``work`` unless the client
disconnects first; then ``work`` is cancelled (a local model stops at its next token, an
upstream call is dropped, the pipeline's ``finally`` stages record a 499) and
``ClientGone`` is raised. Call it once the request body has been read: from then on the
only message ``receive`` can deliver is ``http.disconnect``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before the answer was ready."""


async def wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """The result of ``work``; ``ClientGone`` (with ``work`` cancelled) if the client left."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # cancelled work has finished before we answer
    if task.cancelled() and watcher.done() and not watcher.cancelled():
        raise ClientGone
    return task.result()
