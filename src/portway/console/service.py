"""What the console's pages show and do, with no HTTP types: one serving class.

Every method takes the page's principal: a virtual key sees only its own key, usage,
requests and charts; only an admin (master key, or an open server) sees everything and
may change keys. Key changes go through ``KeyService``, usage through the same report
code as ``/v1/admin/usage``, so the console and the admin API cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from portway.accounting.reports import parse_group_by, present, to_csv, usage_filter
from portway.console.overview import DEFAULT_WINDOW, WINDOWS, overview
from portway.keys.serving import KeyServing
from portway.keys.wire import KeyCreate, KeyObject, KeyUpdate
from portway.security.principal import Principal
from portway.services import Services
from portway.store.usage_series import UsageSeries

USAGE_GROUPS = ("key", "team", "model", "day")
# Whole UTC days (today and the days before it), so reports read the daily rollup.
USAGE_RANGES = {"today": 1, "7d": 7, "30d": 30, "all": None}
DEFAULT_USAGE_RANGE = "7d"
KEYS_PER_PAGE = 50
DAY = 86400


class ConsoleInputError(ValueError):
    """A form the console cannot act on; the message is shown on the page."""


@dataclass(frozen=True, slots=True)
class KeyChange:
    """A key action's outcome: the key and, after create and rotate, its new secret."""

    key: KeyObject
    secret: str | None = None

    @classmethod
    def of(cls, key: KeyObject) -> KeyChange:
        """The key apart from its new secret (the page shows that once, on its own)."""
        shown = KeyObject(**key)  # type: ignore[typeddict-item]
        return cls(shown, shown.pop("key", None))


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


def _blank_to_none(form: Mapping[str, str]) -> dict[str, Any]:
    return {name: value.strip() or None for name, value in form.items()}


def _models(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()] or None


class ConsoleService:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._series = UsageSeries(services.database)

    # Overview -----------------------------------------------------------------------

    async def overview(self, principal: Principal, window_name: str | None) -> dict[str, Any]:
        window = WINDOWS.get(window_name or DEFAULT_WINDOW, WINDOWS[DEFAULT_WINDOW])
        await self._services.accounting.ledger.flush()  # this process's latest calls count
        now = time.time()
        first = (int(now - window.seconds) // window.step + 1) * window.step
        buckets = await self._series.buckets(
            first, now + 1, window.step, None if principal.is_admin else principal.key_id
        )
        return {"window": window, "windows": WINDOWS.values(), **overview(buckets, window, now)}

    # Deployments --------------------------------------------------------------------

    async def deployments(self) -> list[dict[str, Any]]:
        """The router's health report joined with each deployment's queue statistics."""
        report = await self._services.router.health_report()
        queues = self._services.accounting.gate.stats()
        rows = []
        for row in report["data"]:
            queue = queues.get(row["id"], {})
            rows.append({**row, "queue_depth": queue.get("depth", 0), "store": report["store"]})
        return rows

    # Keys ---------------------------------------------------------------------------

    async def keys(self, principal: Principal, page: int = 0) -> tuple[list[KeyObject], bool]:
        """One page of keys, newest first, and whether older ones follow."""
        serving = KeyServing(self._services)
        if principal.is_admin:
            keys = await serving.list(
                limit=KEYS_PER_PAGE + 1, offset=page * KEYS_PER_PAGE, newest_first=True
            )
            return keys[:KEYS_PER_PAGE], len(keys) > KEYS_PER_PAGE
        own = await serving.retrieve(principal.key_id or "")  # budgets show spend up to now
        return ([own] if own is not None else []), False

    async def key(self, key_id: str) -> KeyObject | None:
        return await KeyServing(self._services).retrieve(key_id, settle=False)

    async def create_key(self, principal: Principal, form: Mapping[str, str]) -> KeyChange:
        values = _blank_to_none(form)
        fields: dict[str, Any] = {
            name: values.get(name)
            for name in ("name", "user", "team", "rpm", "tpm", "max_budget")
            if values.get(name) is not None
        }
        if values.get("budget_period"):
            fields["budget_period"] = values["budget_period"]
        if (models := _models(values.get("models"))) is not None:
            fields["models"] = models
        if values.get("expires_in_days"):
            try:
                fields["expires_in"] = float(values["expires_in_days"]) * 86400
            except ValueError:
                raise ConsoleInputError("expires in: enter a number of days") from None
        try:
            body = KeyCreate.model_validate(fields)
        except ValidationError as error:
            raise ConsoleInputError(_validation_message(error)) from None
        return KeyChange.of(await KeyServing(self._services).create(principal, body))

    async def update_key(
        self, principal: Principal, key_id: str, form: Mapping[str, str]
    ) -> KeyChange | None:
        """Limits and budget from the key's edit form: an empty field removes the limit."""
        values = _blank_to_none(form)
        fields: dict[str, Any] = {
            "rpm": values.get("rpm"),
            "tpm": values.get("tpm"),
            "models": _models(values.get("models")),
            "max_budget": values.get("max_budget"),
        }
        if values.get("budget_period"):
            fields["budget_period"] = values["budget_period"]
        try:
            body = KeyUpdate.model_validate(fields)
        except ValidationError as error:
            raise ConsoleInputError(_validation_message(error)) from None
        key = await KeyServing(self._services).update(principal, key_id, body)
        return KeyChange(key) if key is not None else None

    async def revoke_key(self, principal: Principal, key_id: str) -> KeyChange | None:
        key = await KeyServing(self._services).revoke(principal, key_id)
        return KeyChange(key) if key is not None else None

    async def rotate_key(self, principal: Principal, key_id: str) -> KeyChange | None:
        key = await KeyServing(self._services).rotate(principal, key_id)
        return KeyChange.of(key) if key is not None else None

    # Usage --------------------------------------------------------------------------

    def _usage_query(
        self, principal: Principal, params: Mapping[str, str]
    ) -> tuple[dict[str, str | None], list[str], str]:
        range_name = params.get("range") or DEFAULT_USAGE_RANGE
        if range_name not in USAGE_RANGES:
            range_name = DEFAULT_USAGE_RANGE
        days = USAGE_RANGES[range_name]
        group = params.get("group_by") or "key"
        if group not in USAGE_GROUPS:
            group = "key"
        filters: dict[str, str | None] = {
            "since": str((int(time.time()) // DAY - days + 1) * DAY) if days else None,
            "model": params.get("model") or None,
            "team": params.get("team") or None,
            "key": params.get("key") or None,
        }
        if not principal.is_admin:
            filters["key"] = principal.key_id
        return filters, parse_group_by(group), range_name

    async def usage(self, principal: Principal, params: Mapping[str, str]) -> dict[str, Any]:
        filters, group_by, range_name = self._usage_query(principal, params)
        await self._services.accounting.ledger.flush()
        summaries = await self._services.accounting.usage.summary(
            usage_filter(filters), group_by, 10_000
        )
        items = [present(summary) for summary in summaries]
        total_cost = sum(item["cost"] for item in items)
        return {
            "items": items,
            "group_by": group_by[0],
            "range": range_name,
            "filters": filters,
            "total_cost": total_cost,
            "total_requests": sum(item["requests"] for item in items),
        }

    async def usage_csv(self, principal: Principal, params: Mapping[str, str]) -> str:
        page = await self.usage(principal, params)
        return to_csv(page["items"], [page["group_by"]])

    # Playground ---------------------------------------------------------------------

    def models(self, principal: Principal) -> list[str]:
        """The model names this principal may call, as ``/v1/models`` lists them."""
        names = sorted(self._services.model_cards)
        return [name for name in names if principal.may_use(name)]
