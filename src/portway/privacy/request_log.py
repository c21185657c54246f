"""The request log's bodies as privacy content: user deletion and per-key retention.

Entries stay (they are metadata: who, model, status, costs); their request and response
bodies, kept only where the key or settings allow, are content: ``erase_user`` nulls a
user's (the key's user, as the entry records it), ``purge_expired`` those past their
key's (else team's, else default) retention.
"""

from __future__ import annotations

from portway.observability.request_log import RequestLog
from portway.privacy.erasers import RetentionLookup


class RequestLogBodies:
    name = "request_log_bodies"

    def __init__(self, log: RequestLog) -> None:
        self._log = log
        self._repository = log.repository

    async def erase_user(self, user: str) -> int:
        await self._log.writer.flush()  # a queued entry must not bring a body back later
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
