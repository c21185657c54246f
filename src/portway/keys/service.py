"""Virtual keys: issue, rotate, revoke, and resolve a presented secret to a ``Principal``.

Contract:
- A secret is ``pw-`` + 43 url-safe characters (256 random bits). Only its SHA-256 is
  stored: a fast hash is enough because the secret is random, not a password; nobody can
  search 2^256 candidates, so a slow KDF would only slow every cache miss.
- ``KeyService.resolve`` (by secret) and ``resolve_id`` (by key id, for work done later
  on a key's behalf) answer from an in-process cache; an entry is trusted for
  ``cache_ttl`` seconds (default 1 s), so a key revoked or changed on any process takes
  effect everywhere within that time, and a busy key costs one DB round-trip per TTL.
  Concurrent misses for one key share a single lookup.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from portway.retention import effective
from portway.security.principal import BudgetRef, Principal
from portway.store.budgets import BudgetRepository, BudgetState
from portway.store.keys import KeyFields, KeyRecord, KeyRepository, KeyWithBudgets

SECRET_PREFIX = "pw-"
_DISPLAY_CHARS = 10
_MAX_CACHE_ENTRIES = 100_000
# ("secret", sha256 of a presented secret) or ("id", key id)
CacheKey = tuple[Literal["secret", "id"], str]


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    """Enough of the secret to recognise it in a list, far too little to use it."""
    return secret[:_DISPLAY_CHARS]


def new_key_id() -> str:
    return "key_" + secrets.token_hex(10)


def looks_like_virtual_key(token: str) -> bool:
    return token.startswith(SECRET_PREFIX)


Rejection = Literal["revoked", "expired"]
KeyStatus = Literal["active", "revoked", "expired", "unknown"]


@dataclass(frozen=True, slots=True)
class Resolved:
    """The outcome of a key lookup: a principal, a rejection, or unknown (both None)."""

    principal: Principal | None = None
    rejection: Rejection | None = None

    def status(self, now: float) -> KeyStatus:
        """``active`` only while the key is valid at ``now`` (wall-clock): an answer cached
        before the key expired says ``expired`` once it has."""
        if self.principal is not None:
            expires_at = self.principal.expires_at
            return "active" if expires_at is None or expires_at > now else "expired"
        return self.rejection or "unknown"


UNKNOWN = Resolved()


def budget_ref(state: BudgetState) -> BudgetRef:
    return BudgetRef(
        id=state.id,
        scope=state.scope,  # type: ignore[arg-type]
        subject=state.subject,
        limit_nanos=state.limit_nanos,
        period=state.period,
    )


def principal_for(found: KeyWithBudgets, default_retention: str | None = None) -> Principal:
    key = found.key
    return Principal(
        kind="virtual_key",
        key_id=key.id,
        name=key.name,
        user=key.user_id,
        team=key.team_id,
        allowed_models=key.allowed_models,
        metadata=dict(key.metadata),
        rpm=key.rpm,
        tpm=key.tpm,
        priority=key.priority,
        retention=effective(key.retention, found.team_retention, default_retention),
        expires_at=key.expires_at,
        budgets=tuple(budget_ref(budget) for budget in found.budgets),
    )


def _resolve(found: KeyWithBudgets | None, now: float, default_retention: str | None) -> Resolved:
    if found is None:
        return UNKNOWN
    status = found.key.status(now)
    if status != "active":
        return Resolved(rejection=status)  # type: ignore[arg-type]
    return Resolved(principal=principal_for(found, default_retention))


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    limit_nanos: int
    period: str


class KeyService:
    """Key lifecycle for the admin API and CLI, and cached resolution for authentication."""

    def __init__(
        self,
        keys: KeyRepository,
        budgets: BudgetRepository,
        *,
        cache_ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        default_retention: str | None = None,
    ) -> None:
        self.keys = keys
        self.default_retention = default_retention
        self.budgets = budgets
        self._ttl = cache_ttl
        self._clock = clock
        self._cache: dict[CacheKey, tuple[float, Resolved]] = {}
        self._inflight: dict[CacheKey, asyncio.Future[Resolved]] = {}
        self._next_sweep = 0.0

    # Lifecycle ------------------------------------------------------------------------

    async def create(
        self, fields: KeyFields, budget: BudgetSpec | None = None
    ) -> tuple[KeyRecord, str]:
        """A new key and its secret; the secret is never retrievable again."""
        secret = new_secret()
        record = await self.keys.create(
            new_key_id(),
            secret_digest(secret),
            display_prefix(secret),
            fields,
            budget=(budget.limit_nanos, budget.period) if budget else None,
        )
        return record, secret

    async def rotate(self, key_id: str) -> tuple[KeyRecord, str] | None:
        secret = new_secret()
        record = await self.keys.rotate(key_id, secret_digest(secret), display_prefix(secret))
        self._cache.clear()
        return (record, secret) if record is not None else None

    async def revoke(self, key_id: str) -> KeyRecord | None:
        record = await self.keys.revoke(key_id)
        self._cache.clear()
        return record

    async def update(
        self,
        key_id: str,
        changes: dict[str, object],
        budget: BudgetSpec | Literal["keep", "remove"] = "keep",
    ) -> KeyRecord | None:
        """Change fields and, unless ``keep``, replace or remove the key's budget."""
        if await self.keys.get(key_id) is None:
            return None
        if budget == "remove":
            await self.budgets.delete("key", key_id)
        elif isinstance(budget, BudgetSpec):
            await self.budgets.set("key", key_id, budget.limit_nanos, budget.period)
        record = await self.keys.update(key_id, changes)
        self._cache.clear()
        return record

    # Authentication -------------------------------------------------------------------

    async def resolve(self, secret: str) -> Resolved:
        """The key a presented secret belongs to."""
        digest = secret_digest(secret)
        return await self._cached(("secret", digest), lambda: self.keys.by_secret_hash(digest))

    async def resolve_id(self, key_id: str) -> Resolved:
        """The key with this id, as ``resolve`` would find it now: for work done later on a
        key's behalf (assistant runs), so revocation, expiry, limits and budgets apply."""
        return await self._cached(("id", key_id), lambda: self.keys.by_id(key_id))

    async def _cached(
        self, cache_key: CacheKey, lookup: Callable[[], Awaitable[KeyWithBudgets | None]]
    ) -> Resolved:
        now = self._clock()
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        pending = self._inflight.get(cache_key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Resolved] = asyncio.get_running_loop().create_future()
        self._inflight[cache_key] = future
        try:
            resolved = _resolve(await lookup(), time.time(), self.default_retention)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(cache_key, None)
        future.set_result(resolved)
        if now >= self._next_sweep or len(self._cache) >= _MAX_CACHE_ENTRIES:
            self._evict(now)
        self._cache[cache_key] = (now + self._ttl, resolved)
        return resolved

    def forget(self) -> None:
        """Drop every cached lookup (a team's policy changed)."""
        self._cache.clear()

    @property
    def cached_entries(self) -> int:
        """Lookups held in the cache now (expired ones go at the next sweep)."""
        return len(self._cache)

    def _evict(self, now: float) -> None:
        """Drop expired entries, at most once per TTL: every distinct secret presented
        (unknown ones too) is cached, so without this the cache grew to its cap."""
        self._next_sweep = now + self._ttl
        self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        if len(self._cache) >= _MAX_CACHE_ENTRIES:
            self._cache.clear()
