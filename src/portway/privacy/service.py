"""``PrivacyService``: track stored content, purge it past retention, delete a user's data.

Contract:
- Content is what a client sent or a model wrote and Portway keeps: stored responses
  (with their input items and stream events), conversations and their items, threads
  (messages, runs, run steps), files (rows, bytes, chunks), vector stores (chunks), and
  batches (line results, output and error files). Each is recorded in
  ``content_owners`` when stored, with the key, team and end user it was stored for.
  Cached answers are content too: zero-retention keys never enter the cache, and a
  user's deletion purges the cache namespaces of the user's own (team-less) keys.
  Not content: the ledger (counts, costs), keys, budgets, assistants (configuration).
- Retention of an object: its key's ``retention``, else its team's, else
  ``privacy.retention``; read at purge time, so shortening a policy (or turning a key to
  zero retention) purges what is already stored at the next pass.
- ``delete_user_data`` deletes every tracked object of the user and records the action,
  with counts per kind, in the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from portway.cache.stage import CacheStage
from portway.config import PrivacyConfig
from portway.privacy.erasers import Eraser, UserContentStore
from portway.privacy.owners import KINDS, content_owner
from portway.retention import Retention, effective
from portway.security.audit_log import AuditLog
from portway.security.principal import Principal
from portway.store.keys import KeyRepository
from portway.store.privacy import ContentOwner, ContentOwnerRepository, TeamPolicyRepository

logger = logging.getLogger(__name__)

PAGE = 500


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(KINDS, 0)


class PrivacyService:
    def __init__(
        self,
        owners: ContentOwnerRepository,
        teams: TeamPolicyRepository,
        keys: KeyRepository,
        erasers: Mapping[str, Eraser],
        config: PrivacyConfig,
        audit: AuditLog,
        cache: CacheStage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.owners = owners
        self.teams = teams
        self._keys = keys
        self._erasers = dict(erasers)
        self._config = config
        self._audit = audit
        self._cache = cache
        self._clock = clock
        self._stores: list[UserContentStore] = []
        self._task: asyncio.Task[None] | None = None

    def register(self, store: UserContentStore) -> None:
        """Another store of content joins purges and user deletions."""
        self._stores.append(store)

    async def track(
        self, principal: Principal, kind: str, object_id: str, user: str | None = None
    ) -> None:
        await self.owners.add(content_owner(principal, kind, object_id, self._clock(), user))

    async def _erase(self, owner: ContentOwner) -> bool:
        eraser = self._erasers.get(owner.kind)
        if eraser is None:
            logger.warning("no eraser for stored content of kind %s", owner.kind)
            return False
        return await eraser(owner.tenant, owner.object_id)

    async def _erase_all(self, owners: list[ContentOwner], counts: dict[str, int]) -> int:
        """Erase ``owners``; how many left ``content_owners``."""
        done: list[ContentOwner] = []
        for owner in owners:
            if await self._erase(owner):
                counts[owner.kind] = counts.get(owner.kind, 0) + 1
                done.append(owner)
            elif owner.kind != "batch":
                done.append(owner)  # already deleted through its API
        await self.owners.forget(done)
        return len(done)

    # User data deletion --------------------------------------------------------------

    async def delete_user_data(self, user: str, actor: Principal | str) -> dict[str, Any]:
        counts = empty_counts()
        while True:
            owners = await self.owners.of_user(user, PAGE)
            forgotten = await self._erase_all(owners, counts)
            if len(owners) < PAGE or not forgotten:
                break
        pending = len(await self.owners.of_user(user, PAGE))  # running batches
        for store in self._stores:
            counts[store.name] = await store.erase_user(user)
        counts["cache_entries"] = await self._purge_user_cache(user)
        summary = {
            "object": "portway.user_data.deleted",
            "user": user,
            "deleted": counts,
            "pending": pending,
        }
        await self._audit.record("user_data.delete", actor, user, {"deleted": counts})
        return summary

    async def _purge_user_cache(self, user: str) -> int:
        """Cache namespaces are per tenant: a team-less key's namespace is only its own."""
        if self._cache is None:
            return 0
        deleted = 0
        for key in await self._keys.list(user_id=user):
            if key.team_id is None:
                deleted += await self._cache.purge(namespace=key.id)
        return deleted

    # Retention -----------------------------------------------------------------------

    async def retention_of(
        self,
        key_id: str | None,
        team_id: str | None,
        key_labels: dict[str, str | None] | None = None,
        teams: dict[str, str | None] | None = None,
    ) -> Retention:
        """The retention of content stored for this key and team, as of now (``key_labels``
        and ``teams`` cache lookups across one purge pass)."""
        key_labels = {} if key_labels is None else key_labels
        key_label: str | None = None
        if key_id is not None:
            if key_id not in key_labels:
                record = await self._keys.get(key_id)
                key_labels[key_id] = record.retention if record is not None else None
            key_label = key_labels[key_id]
        team_label: str | None = None
        if team_id is not None:
            if teams is None:
                policy = await self.teams.get(team_id)
                team_label = policy.retention if policy is not None else None
            else:
                team_label = teams.get(team_id)
        return effective(key_label, team_label, self._config.retention)

    async def purge(self, now: float | None = None) -> dict[str, int]:
        """Delete every tracked object older than its retention; counts per kind."""
        now = self._clock() if now is None else now
        counts = empty_counts()
        teams = await self.teams.retentions()
        key_labels: dict[str, str | None] = {}
        after = 0.0
        while True:
            owners = await self.owners.older_than(now, after, PAGE)
            expired = []
            for owner in owners:
                retention = await self.retention_of(owner.key_id, owner.team_id, key_labels, teams)
                seconds = retention.seconds
                if seconds is not None and owner.created_at <= now - seconds:
                    expired.append(owner)
            await self._erase_all(expired, counts)
            if len(owners) < PAGE:
                break
            after = owners[-1].created_at + 1e-6

        async def lookup(key_id: str | None, team_id: str | None) -> Retention:
            return await self.retention_of(key_id, team_id, key_labels, teams)

        for store in self._stores:
            counts[store.name] = await store.purge_expired(now, lookup)
        if any(counts.values()):
            logger.info("retention purge deleted %s", counts)
        return counts

    async def start(self) -> None:
        self._task = asyncio.create_task(self._purge_forever(), name="portway-retention")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _purge_forever(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception:
                logger.exception("retention purge failed; retried at the next interval")
            await asyncio.sleep(self._config.purge_interval_seconds)
