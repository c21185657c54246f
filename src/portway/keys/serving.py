"""``KeyServing``: the admin actions on virtual keys, for the admin API and the console.

Contract: wire requests in, key objects out; every change is recorded in the audit log
(summaries only, never a secret). Listing and reading settle pending spend first, so a
key's budget shows what was spent up to now. A missing key is ``None``: each caller
reports it its own way (404, or a message on the page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from portway.accounting.pricing import nanos
from portway.errors import NotFoundError
from portway.keys.render import budget_spec, key_fields, key_object, key_summary
from portway.keys.service import BudgetSpec
from portway.keys.wire import KeyCreate, KeyObject, KeyUpdate
from portway.security.principal import Principal

if TYPE_CHECKING:
    from portway.services import Services


def key_not_found(key_id: str) -> NotFoundError:
    return NotFoundError(f"No API key with id `{key_id}`.", param="key_id")


class KeyServing:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._keys = services.accounting.keys

    async def _audit(
        self, principal: Principal, action: str, subject: str, details: dict[str, Any]
    ) -> None:
        await self._services.audit.record(action, principal, subject, details)

    async def create(self, principal: Principal, body: KeyCreate) -> KeyObject:
        """The new key, its secret in ``key`` (never retrievable again)."""
        record, secret = await self._keys.create(key_fields(body), budget_spec(body))
        await self._audit(principal, "key.create", record.id, key_summary(record))
        return key_object(record, secret)

    async def list(
        self,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
        include_revoked: bool = True,
        limit: int = 1000,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[KeyObject]:
        await self._services.accounting.settle_now()
        records = await self._keys.keys.list(
            user_id=user_id,
            team_id=team_id,
            include_revoked=include_revoked,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )
        return [key_object(record) for record in records]

    async def retrieve(self, key_id: str, *, settle: bool = True) -> KeyObject | None:
        if settle:
            await self._services.accounting.settle_now()
        record = await self._keys.keys.get(key_id)
        return key_object(record) if record is not None else None

    async def exists(self, key_id: str) -> bool:
        return await self._keys.keys.get(key_id) is not None

    async def update(self, principal: Principal, key_id: str, body: KeyUpdate) -> KeyObject | None:
        """Only the fields ``body`` sets change; ``max_budget: null`` removes the budget."""
        budget: BudgetSpec | Literal["keep", "remove"] = "keep"
        if "max_budget" in body.model_fields_set:
            if body.max_budget is None:
                budget = "remove"
            else:
                budget = BudgetSpec(nanos(body.max_budget), body.budget_period or "monthly")
        record = await self._keys.update(key_id, body.changes(), budget)
        if record is None:
            return None
        if budget != "keep":  # spare slices must not outlive a lower limit
            await self._services.accounting.settle_now()
        changed = sorted(body.model_fields_set)
        await self._audit(
            principal, "key.update", key_id, {"fields": changed, **key_summary(record)}
        )
        return key_object(record)

    async def revoke(self, principal: Principal, key_id: str) -> KeyObject | None:
        record = await self._keys.revoke(key_id)
        if record is None:
            return None
        await self._audit(principal, "key.revoke", key_id, {})
        return key_object(record)

    async def rotate(self, principal: Principal, key_id: str) -> KeyObject | None:
        """The key with its new secret in ``key``; None if it is missing or revoked."""
        rotated = await self._keys.rotate(key_id)
        if rotated is None:
            return None
        record, secret = rotated
        await self._audit(principal, "key.rotate", key_id, {"prefix": record.prefix})
        return key_object(record, secret)
