"""A run's creator as of now: keys looked up again by id, cached, refused once unusable."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from portway.assistants.principals import RunPrincipals, principal_snapshot
from portway.errors import AuthenticationError
from portway.keys.service import BudgetSpec, KeyService
from portway.security.principal import MASTER
from portway.store import Database
from portway.store.budgets import BudgetRepository
from portway.store.keys import KeyFields, KeyRepository


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def database(sqlite_database_url: str) -> AsyncIterator[Database]:
    db = Database(sqlite_database_url)
    await db.start()
    yield db
    await db.close()


def key_service(database: Database, clock: Clock) -> KeyService:
    return KeyService(
        KeyRepository(database), BudgetRepository(database), cache_ttl=1.0, clock=clock
    )


async def test_a_live_key_comes_back_with_its_current_limits_and_budgets(
    database: Database,
) -> None:
    keys = key_service(database, Clock())
    record, _ = await keys.create(
        KeyFields(team_id="t", rpm=5), BudgetSpec(limit_nanos=10**9, period="daily")
    )
    snapshot = {"kind": "virtual_key", "key_id": record.id, "team": "t"}

    principal = await RunPrincipals(keys).current(snapshot)

    assert (principal.key_id, principal.team, principal.rpm) == (record.id, "t", 5)
    assert [budget.scope for budget in principal.budgets] == ["key"]


async def test_lookups_by_id_are_cached_for_the_ttl(database: Database) -> None:
    clock = Clock()
    keys = key_service(database, clock)
    record, _ = await keys.create(KeyFields(team_id="t"))
    assert (await keys.resolve_id(record.id)).status(time.time()) == "active"

    # Revoked behind the service's back (as by another process): seen after the TTL.
    await KeyRepository(database).revoke(record.id)
    assert (await keys.resolve_id(record.id)).status(time.time()) == "active"
    clock.now += 1.5
    assert (await keys.resolve_id(record.id)).status(time.time()) == "revoked"


@pytest.mark.parametrize(
    ("make_unusable", "code"),
    [
        ("revoke", "revoked_api_key"),
        ("expire", "expired_api_key"),
        ("forget", "invalid_api_key"),
    ],
)
async def test_an_unusable_key_stops_the_run(
    database: Database, make_unusable: str, code: str
) -> None:
    keys = key_service(database, Clock())
    record, _ = await keys.create(KeyFields(team_id="t"))
    key_id = record.id
    if make_unusable == "revoke":
        await keys.revoke(key_id)
    elif make_unusable == "expire":
        await keys.update(key_id, {"expires_at": time.time() - 1})
    else:
        key_id = "key_deleted"

    with pytest.raises(AuthenticationError) as caught:
        await RunPrincipals(keys).current({"kind": "virtual_key", "key_id": key_id})

    assert caught.value.code == code
    assert key_id in caught.value.message


async def test_master_and_anonymous_runs_keep_their_snapshot(database: Database) -> None:
    principals = RunPrincipals(key_service(database, Clock()))
    assert await principals.current(principal_snapshot(MASTER)) == MASTER
    anonymous = await principals.current({"kind": "anonymous"})
    assert anonymous.kind == "anonymous" and anonymous.key_id is None
