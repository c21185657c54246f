"""Retention purges and user data deletion, through a real Portway over HTTP.

Purges are driven with a clock (a ``PrivacyService`` on the server's own database and
file store, as a second process would run it), so "two days later" needs no waiting.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from portway.config import Settings
from portway.privacy.erasers import build_erasers
from portway.privacy.request_log import RequestLogBodies
from portway.privacy.service import PrivacyService
from portway.retrieval.files import FileService
from portway.retrieval.storage import FileStorage
from portway.security.audit_log import AuditLog
from portway.security.server_keys import load_server_key
from portway.store import Database
from portway.store.files import FileRepository
from portway.store.keys import KeyRepository
from portway.store.privacy import ContentOwnerRepository, TeamPolicyRepository
from portway.store.request_log import RequestLogRepository
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer
from tests.privacy.support import files_containing, tables_containing

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MASTER = "sk-master-retention"
DAY = 86_400.0


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("retention-state")


@pytest.fixture(scope="module")
def server(
    start_portway: PortwayFactory, fake_openai_server: FakeOpenAI, state_dir: Path
) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "database_url": f"sqlite:///{state_dir}/portway.db",
            "files": {"storage_dir": str(state_dir / "files")},
            "ledger": {"journal_dir": str(state_dir / "journal")},
            "server_key_file": str(state_dir / "server.key"),
            "cache": {"enabled": True, "mode": "always"},
            "request_log": {"bodies": True, "flush_interval_ms": 20},
            "models": [fake_model("fake-gpt", fake_openai_server.base_url)],
        }
    )


def logged(state_dir: Path, marker: str) -> None:
    """Wait until the request log (written off the hot path) holds ``marker``'s bodies."""
    deadline = time.monotonic() + 10
    while "request_log" not in tables_containing(state_dir / "portway.db", marker):
        assert time.monotonic() < deadline, "the request log never got the entry"
        time.sleep(0.05)


def purge_at(server: PortwayServer, now: float) -> dict[str, int]:
    settings: Settings = server.app.state.services.settings

    async def run() -> dict[str, int]:
        database = Database(settings.database_url, migrate_on_start=False)
        files = FileService(
            FileRepository(database),
            FileStorage(settings.files.storage_dir, settings.files.max_bytes),
            settings.files,
        )
        privacy = PrivacyService(
            ContentOwnerRepository(database),
            TeamPolicyRepository(database),
            KeyRepository(database),
            build_erasers(database, files),
            settings.privacy,
            AuditLog.build(settings.audit, database, load_server_key(settings)),
            clock=lambda: now,
        )
        privacy.register(RequestLogBodies(RequestLogRepository(database)))
        try:
            return await privacy.purge()
        finally:
            await database.close()

    return asyncio.run(run())


Stored = dict[str, Callable[[], Any]]


def store_everything(client: openai.OpenAI, marker: str, **request: Any) -> Stored:
    """Create one object of every stored kind; retrievers that 404 once it is gone."""
    text = f"note {marker}"
    response = client.responses.create(model="fake-gpt", input=text, **request)
    conversation = client.conversations.create(items=[{"role": "user", "content": text}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    upload = client.files.create(file=("n.txt", io.BytesIO(text.encode())), purpose="assistants")
    store = client.vector_stores.create(name=f"kb {marker}")
    return {
        "response": lambda: client.responses.retrieve(response.id),
        "conversation": lambda: client.conversations.retrieve(conversation.id),
        "thread": lambda: client.beta.threads.retrieve(thread.id),
        "file": lambda: client.files.retrieve(upload.id),
        "vector_store": lambda: client.vector_stores.retrieve(store.id),
    }


def gone(stored: Stored) -> list[str]:
    missing = []
    for kind, retrieve in stored.items():
        try:
            retrieve()
        except openai.NotFoundError:
            missing.append(kind)
    return sorted(missing)


def test_content_past_its_retention_is_purged(server: PortwayServer, state_dir: Path) -> None:
    short = server.create_key(MASTER, name="short", retention=1)
    forever = server.create_key(MASTER, name="forever")
    short_marker, kept_marker = "short-" + secrets.token_hex(6), "kept-" + secrets.token_hex(6)
    short_objects = store_everything(server.sdk(short["key"]), short_marker)
    kept_objects = store_everything(server.sdk(forever["key"]), kept_marker)
    logged(state_dir, short_marker)

    assert sum(purge_at(server, time.time()).values()) == 0  # nothing is a day old yet
    assert gone(short_objects) == []

    counts = purge_at(server, time.time() + 2 * DAY)
    assert counts == {
        "response": 1,
        "conversation": 1,
        "thread": 1,
        "file": 1,
        "vector_store": 1,
        "batch": 0,
        "sketch": 0,
        "request_log_bodies": 1,  # the response's entry keeps its metadata, not its bodies
    }
    assert gone(short_objects) == sorted(short_objects)
    assert gone(kept_objects) == []
    assert tables_containing(state_dir / "portway.db", short_marker) == {}
    assert files_containing(state_dir / "files", short_marker) == []
    assert tables_containing(state_dir / "portway.db", kept_marker)


def test_a_key_turned_to_zero_retention_loses_what_it_stored(server: PortwayServer) -> None:
    key = server.create_key(MASTER, name="later-zero")
    stored = store_everything(server.sdk(key["key"]), "z-" + secrets.token_hex(6))
    with server.admin(MASTER) as http:
        changed = http.patch(f"/v1/admin/keys/{key['id']}", json={"retention": "none"})
        assert changed.status_code == 200 and changed.json()["retention"] == "none"
        assert changed.json()["no_store"] is True
        purge_at(server, time.time())
        # Back to keeping content, so the key may look (its objects are gone).
        restored = http.patch(f"/v1/admin/keys/{key['id']}", json={"no_store": False})
        assert restored.json()["retention"] is None
    assert gone(stored) == sorted(stored)


def test_deleting_a_users_data(server: PortwayServer, state_dir: Path) -> None:
    alice_key = server.create_key(MASTER, name="alice", user="alice")
    shared_key = server.create_key(MASTER, name="backend")  # serves many end users
    alice = server.sdk(alice_key["key"])
    shared = server.sdk(shared_key["key"])
    alice_marker = "a-" + secrets.token_hex(6)
    alice_objects = store_everything(alice, alice_marker)
    # A shared key's response for end user alice (the request's ``user``) and one for bob.
    for_alice = shared.responses.create(model="fake-gpt", input="hi", user="alice")
    for_bob = shared.responses.create(model="fake-gpt", input="hi", user="bob")
    alice.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "cache me"}]
    )

    logged(state_dir, alice_marker)
    with server.admin(MASTER) as http:
        deleted = http.delete("/v1/admin/users/alice/data")
    assert deleted.status_code == 200, deleted.text
    summary = deleted.json()
    assert summary["user"] == "alice"
    assert summary["deleted"]["response"] == 2
    for kind in ("conversation", "thread", "file", "vector_store"):
        assert summary["deleted"][kind] == 1
    # Cached answers of alice's own key: the chat call and the response's model call.
    assert summary["deleted"]["cache_entries"] == 2
    assert summary["deleted"]["request_log_bodies"] >= 1
    assert tables_containing(state_dir / "portway.db", alice_marker) == {}

    assert gone(alice_objects) == sorted(alice_objects)
    with pytest.raises(openai.NotFoundError):
        shared.responses.retrieve(for_alice.id)
    assert shared.responses.retrieve(for_bob.id).id == for_bob.id

    with server.admin(MASTER) as http:
        audit = http.get("/v1/admin/audit", params={"action": "user_data.delete"}).json()
    record = audit["data"][-1]
    assert record["subject"] == "alice" and record["actor"] == "master"
    assert record["details"]["deleted"]["response"] == 2

    with httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {alice_key['key']}"}
    ) as http:
        assert http.delete("/v1/admin/users/bob/data").status_code == 403
        assert http.get("/v1/admin/audit").status_code == 403


def test_deleting_a_users_data_reaches_their_sketches(
    server: PortwayServer, state_dir: Path
) -> None:
    carol_key = server.create_key(MASTER, name="carol", user="carol")
    carol = server.sdk(carol_key["key"])
    marker = "sk-" + secrets.token_hex(6)
    sketch: Any = carol.post(
        "/sketches",
        body={"description": f"a queue of {marker}", "model": "fake-gpt"},
        cast_to=object,
    )
    deadline = time.monotonic() + 60
    while carol.get(f"/sketches/{sketch['id']}", cast_to=object)["status"] in (
        "queued",
        "in_progress",
    ):
        assert time.monotonic() < deadline, "the sketch never finished"
        time.sleep(0.1)
    with server.admin(MASTER) as http:
        deleted = http.delete("/v1/admin/users/carol/data")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"]["sketch"] == 1
    with pytest.raises(openai.NotFoundError):
        carol.get(f"/sketches/{sketch['id']}", cast_to=object)
    assert tables_containing(state_dir / "portway.db", marker) == {}
