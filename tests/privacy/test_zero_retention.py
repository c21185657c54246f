"""A zero-retention key (``retention: none``) leaves no content anywhere: after calls through
every endpoint, its marker is in no table, no cache and no file of Portway's state."""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer
from tests.privacy.support import (
    files_containing,
    postgres_tables_containing,
    tables_containing,
)
from tests.storage import postgres_database

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MASTER = "sk-master-zero-retention"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('zero-retention-sqlite')}/portway.db"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Path:
    """Every file Portway keeps (database on SQLite, cache, uploads, journal, key)."""
    if database_url.startswith("sqlite"):
        return Path(database_url.removeprefix("sqlite:///")).parent
    return tmp_path_factory.mktemp("zero-retention-postgresql")


def tables_with(database_url: str, state_dir: Path, marker: str) -> dict[str, int]:
    """Tables of Portway's database holding ``marker`` (either backend)."""
    if database_url.startswith("sqlite"):
        return tables_containing(state_dir / "portway.db", marker)
    return postgres_tables_containing(database_url, marker)


@pytest.fixture(scope="module")
def server(
    database_url: str,  # first: set up before, torn down after, the servers using it
    start_portway: PortwayFactory,
    fake_openai_server: FakeOpenAI,
    state_dir: Path,
) -> PortwayServer:
    base_url = fake_openai_server.base_url
    return start_portway(
        {
            "master_key": MASTER,
            "database_url": database_url,
            "files": {"storage_dir": str(state_dir / "files")},
            "ledger": {"journal_dir": str(state_dir / "journal")},
            "server_key_file": str(state_dir / "server.key"),
            "audit": {"requests": True},
            "models": [fake_model("fake-gpt", base_url), fake_model("fake-embed", base_url)],
            "cache": {
                "enabled": True,
                "backend": "sqlite",
                "sqlite_path": str(state_dir / "cache.db"),
                "mode": "always",
            },
        }
    )


def calls(marker: str) -> list[Callable[[openai.OpenAI], Any]]:
    """One call per model endpoint, each carrying ``marker`` in its content."""
    text = f"remember {marker}"
    return [
        lambda c: c.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": text}], user=marker
        ),
        lambda c: list(
            c.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": text}], stream=True
            )
        ),
        lambda c: c.completions.create(model="fake-gpt", prompt=text),
        lambda c: c.embeddings.create(model="fake-embed", input=text),
        lambda c: c.responses.create(model="fake-gpt", input=text, user=marker),
        lambda c: list(c.responses.create(model="fake-gpt", input=text, stream=True)),
    ]


def refused_calls(marker: str) -> list[Callable[[openai.OpenAI], Any]]:
    """Calls that would store content: each is a 400 ``zero_retention``."""
    text = f"remember {marker}"
    return [
        lambda c: c.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": text}], store=True
        ),
        lambda c: c.responses.create(model="fake-gpt", input=text, store=True),
        lambda c: c.responses.create(model="fake-gpt", input=text, conversation="conv_x"),
        lambda c: c.files.create(file=("a.txt", io.BytesIO(text.encode())), purpose="assistants"),
        lambda c: c.vector_stores.create(name=text),
        lambda c: c.beta.assistants.create(model="fake-gpt", instructions=text),
        lambda c: c.beta.threads.create(messages=[{"role": "user", "content": text}]),
        lambda c: c.beta.threads.create_and_run(
            assistant_id="asst_x", thread={"messages": [{"role": "user", "content": text}]}
        ),
        lambda c: c.conversations.create(items=[{"role": "user", "content": text}]),
        lambda c: c.batches.create(
            input_file_id="file_x", endpoint="/v1/chat/completions", completion_window="24h"
        ),
    ]


def run_everything(client: openai.OpenAI, marker: str) -> list[str]:
    """Every call; the codes of the refused ones."""
    for call in calls(marker):
        call(client)
    codes = []
    for call in refused_calls(marker):
        with pytest.raises(openai.BadRequestError) as refused:
            call(client)
        assert refused.value.status_code == 400
        codes.append(refused.value.body["code"])  # type: ignore[index]
    return codes


def settle(server: PortwayServer) -> None:
    """Flush the ledger and the audit queue to the database before scanning it."""
    with server.admin(MASTER) as http:
        assert http.get("/v1/admin/usage").status_code == 200
        assert http.get("/v1/admin/audit/verify").json()["ok"] is True


def test_a_zero_retention_key_leaves_no_content(
    server: PortwayServer, fake_openai: FakeOpenAI, state_dir: Path, database_url: str
) -> None:
    key = server.create_key(MASTER, name="zdr", retention="none")
    assert key["retention"] == "none" and key["no_store"] is True
    marker = "zdr-" + secrets.token_hex(8)
    codes = run_everything(server.sdk(key["key"]), marker)
    assert set(codes) == {"zero_retention"}
    settle(server)

    # The calls did happen: the upstream saw the marker, the ledger and audit have rows.
    assert any(marker in str(r.body) for r in fake_openai.requests)
    with server.admin(MASTER) as http:
        usage = http.get("/v1/admin/usage", params={"key": key["id"]}).json()["data"]
        audit = http.get("/v1/admin/audit", params={"kind": "request", "limit": 1000}).json()
    assert sum(row["requests"] for row in usage) >= 6
    assert any(r["actor"] == f"key:{key['id']}" for r in audit["data"])

    assert tables_with(database_url, state_dir, marker) == {}
    assert tables_containing(state_dir / "cache.db", marker) == {}
    assert files_containing(state_dir, marker) == []


def test_the_same_calls_by_an_ordinary_key_are_stored(
    server: PortwayServer, fake_openai: FakeOpenAI, state_dir: Path, database_url: str
) -> None:
    """The scan finds content when there is some (it is not vacuous)."""
    key = server.create_key(MASTER, name="ordinary")
    marker = "kept-" + secrets.token_hex(8)
    client = server.sdk(key["key"])
    for call in calls(marker):
        call(client)
    settle(server)
    found = tables_with(database_url, state_dir, marker)
    assert {"responses", "response_items"} <= set(found)
    assert tables_containing(state_dir / "cache.db", marker)


def test_a_team_turned_to_zero_retention_applies_to_its_keys(server: PortwayServer) -> None:
    key = server.create_key(MASTER, name="t", team="privacy-team")
    client = server.sdk(key["key"])
    client.beta.threads.create()  # allowed while the team keeps content
    with server.admin(MASTER) as http:
        team = http.put("/v1/admin/teams/privacy-team", json={"retention": "none"})
        assert team.status_code == 200, team.text
        assert team.json()["retention"] == "none"
        bad = http.put("/v1/admin/teams/privacy-team", json={"retention": "forever"})
        assert bad.status_code == 400
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.create()
    assert refused.value.body["code"] == "zero_retention"  # type: ignore[index]
    # A key's own setting wins over its team's.
    own = server.create_key(MASTER, name="own", team="privacy-team", retention=7)
    assert own["retention"] == 7
    server.sdk(own["key"]).beta.threads.create()
