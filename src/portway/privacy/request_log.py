"""The request log's bodies as privacy content: user deletion and per-key retention.

Entries stay (they are metadata: who, model, status, costs); their request and response
bodies, kept only where the key or settings allow, are content: ``erase_user`` nulls a
user's (the key's user, as the entry records it), ``purge_expired`` those past their
key's (else team's, else default) retention.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from portway.privacy.erasers import RetentionLookup
from portway.store.request_log import RequestLogRepository


class RequestLogBodies:
    name = "request_log_bodies"

    def __init__(
        self, repository: RequestLogRepository, flush: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._repository = repository
        self._flush = flush  # the log's queued entries, written before they are erased

    async def erase_user(self, user: str) -> int:
        if self._flush is not None:
            await self._flush()
        return await self._repository.clear_bodies(user_id=user)

    async def purge_expired(self, now: float, retention_of: RetentionLookup) -> int:
        cleared = 0
        for key_id, team_id in await self._repository.body_owners():
            seconds = (await retention_of(key_id, team_id)).seconds
            if seconds is None:
                continue
            cleared += await self._repository.clear_bodies(
                key_id=key_id, team_id=team_id, before=now - seconds + 1e-6
            )
        return cleared
