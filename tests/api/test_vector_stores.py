"""`/v1/vector_stores` through the official SDK, on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import openai
import pytest

from tests.conftest import PortwayFactory
from tests.fakes.auth import TokenAuthenticator, team_key
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.retrieval.helpers import REFUNDS, SECURITY, SHIPPING
from tests.storage import postgres_database

POLL_MS = 20


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def database_url_for_module(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('vs')}/portway.db"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def server(
    start_portway: PortwayFactory,
    database_url_for_module: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> PortwayServer:
    server = start_portway(
        {
            "database_url": database_url_for_module,
            "models": [{"name": "m", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"}],
            "files": {"storage_dir": str(tmp_path_factory.mktemp("vs-files"))},
        }
    )
    server.app.state.services.authenticator = TokenAuthenticator(
        {"key-a": team_key("a"), "key-b": team_key("b")}
    )
    return server


def upload(client: openai.OpenAI, name: str, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants").id


def wait_for_files(client: openai.OpenAI, store_id: str, file_ids: list[str]) -> None:
    for file_id in file_ids:
        client.vector_stores.files.poll(file_id, vector_store_id=store_id, poll_interval_ms=POLL_MS)


def test_vector_store_lifecycle(alice: openai.OpenAI) -> None:
    file_ids = [upload(alice, "refunds.md", REFUNDS), upload(alice, "shipping.md", SHIPPING)]
    response = alice.vector_stores.with_raw_response.create(
        name="help center", file_ids=file_ids, metadata={"team": "support"}
    )
    assert_matches("VectorStoreObject", response.http_response.json())
    store = response.parse()
    assert store.name == "help center" and store.metadata == {"team": "support"}
    assert store.file_counts.total == 2

    wait_for_files(alice, store.id, file_ids)
    raw = alice.vector_stores.with_raw_response.retrieve(store.id).http_response.json()
    assert_matches("VectorStoreObject", raw)
    assert raw["status"] == "completed"
    assert raw["file_counts"] == {
        "in_progress": 0,
        "completed": 2,
        "failed": 0,
        "cancelled": 0,
        "total": 2,
    }
    assert raw["usage_bytes"] > 0

    updated = alice.vector_stores.update(
        store.id,
        name="help",
        metadata={"team": "ops"},
        expires_after={"anchor": "last_active_at", "days": 7},
    )
    assert (updated.name, updated.metadata) == ("help", {"team": "ops"})
    assert updated.expires_at == updated.last_active_at + 7 * 86_400

    listing = alice.vector_stores.with_raw_response.list(limit=100).http_response.json()
    assert_matches("ListVectorStoresResponse", listing)
    assert store.id in [item["id"] for item in listing["data"]]

    deleted = alice.vector_stores.with_raw_response.delete(store.id).http_response.json()
    assert_matches("DeleteVectorStoreResponse", deleted)
    with pytest.raises(openai.NotFoundError):
        alice.vector_stores.retrieve(store.id)
    # The files themselves stay.
    assert alice.files.retrieve(file_ids[0]).id == file_ids[0]


def test_vector_store_files(alice: openai.OpenAI) -> None:
    store = alice.vector_stores.create(name="files")
    good = upload(alice, "refunds.md", REFUNDS)
    pdf = upload(alice, "scan.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nbinary")
    attached = alice.vector_stores.files.create(
        vector_store_id=store.id,
        file_id=good,
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20},
        },
        attributes={"lang": "en"},
    )
    assert attached.status == "in_progress"
    alice.vector_stores.files.create(vector_store_id=store.id, file_id=pdf)
    wait_for_files(alice, store.id, [good, pdf])

    raw = alice.vector_stores.files.with_raw_response.retrieve(
        good, vector_store_id=store.id
    ).http_response.json()
    assert_matches("VectorStoreFileObject", raw)
    assert raw["status"] == "completed" and raw["last_error"] is None
    assert raw["chunking_strategy"]["static"] == {
        "max_chunk_size_tokens": 100,
        "chunk_overlap_tokens": 20,
    }
    failed = alice.vector_stores.files.retrieve(pdf, vector_store_id=store.id)
    assert failed.status == "failed"
    assert failed.last_error is not None and failed.last_error.code == "unsupported_file"
    assert "PDF" in failed.last_error.message

    completed = alice.vector_stores.files.list(vector_store_id=store.id, filter="completed")
    assert [f.id for f in completed.data] == [good]
    listing = alice.vector_stores.files.with_raw_response.list(
        vector_store_id=store.id
    ).http_response.json()
    assert_matches("ListVectorStoreFilesResponse", listing)
    assert {item["id"] for item in listing["data"]} == {good, pdf}

    updated = alice.vector_stores.files.update(
        good, vector_store_id=store.id, attributes={"lang": "pt"}
    )
    assert updated.attributes == {"lang": "pt"}

    deleted = alice.vector_stores.files.delete(pdf, vector_store_id=store.id)
    assert_matches("DeleteVectorStoreFileResponse", deleted.model_dump(mode="json"))
    counts = alice.vector_stores.retrieve(store.id).file_counts
    assert (counts.completed, counts.failed, counts.total) == (1, 0, 1)
    with pytest.raises(openai.NotFoundError):
        alice.vector_stores.files.retrieve(pdf, vector_store_id=store.id)


def test_file_batches(alice: openai.OpenAI) -> None:
    store = alice.vector_stores.create(name="batches")
    file_ids = [
        upload(alice, "refunds.md", REFUNDS),
        upload(alice, "shipping.md", SHIPPING),
        upload(alice, "security.md", SECURITY),
    ]
    batch = alice.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id, file_ids=file_ids, poll_interval_ms=POLL_MS
    )
    raw = alice.vector_stores.file_batches.with_raw_response.retrieve(
        batch.id, vector_store_id=store.id
    ).http_response.json()
    assert_matches("VectorStoreFileBatchObject", raw)
    assert raw["status"] == "completed"
    assert raw["file_counts"]["completed"] == 3 and raw["file_counts"]["total"] == 3
    in_batch = alice.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert {f.id for f in in_batch.data} == set(file_ids)

    with pytest.raises(openai.NotFoundError):
        alice.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=["file-nope"])


def test_search_ranks_the_right_chunk_first(alice: openai.OpenAI) -> None:
    file_ids = [
        upload(alice, "refunds.md", REFUNDS),
        upload(alice, "shipping.md", SHIPPING),
        upload(alice, "security.md", SECURITY),
    ]
    store = alice.vector_stores.create(name="kb", file_ids=file_ids)
    wait_for_files(alice, store.id, file_ids)
    alice.vector_stores.files.update(
        file_ids[1], vector_store_id=store.id, attributes={"topic": "logistics"}
    )

    page = alice.vector_stores.with_raw_response.search(
        store.id, query="How many days until my refund is paid?"
    ).http_response.json()
    assert_matches("VectorStoreSearchResultsPage", page)
    assert page["data"][0]["file_id"] == file_ids[0]
    assert page["data"][0]["filename"] == "refunds.md"
    assert "original payment method" in page["data"][0]["content"][0]["text"]
    assert page["data"][0]["score"] == 1.0
    assert all(0 <= item["score"] <= 1 for item in page["data"])

    courier = alice.vector_stores.search(store.id, query="express courier", max_num_results=1)
    assert [r.file_id for r in courier.data] == [file_ids[1]]
    passwords = alice.vector_stores.search(store.id, query=["password", "two-factor"])
    assert passwords.data[0].file_id == file_ids[2]

    filtered = alice.vector_stores.search(
        store.id,
        query="days",
        filters={"type": "eq", "key": "topic", "value": "logistics"},
    )
    assert {r.file_id for r in filtered.data} == {file_ids[1]}
    nothing = alice.vector_stores.search(store.id, query="zebra xylophone")
    assert nothing.data == []


def test_other_tenants_cannot_see_or_use_a_store(alice: openai.OpenAI, bob: openai.OpenAI) -> None:
    file_id = upload(alice, "refunds.md", REFUNDS)
    store = alice.vector_stores.create(name="private", file_ids=[file_id])
    for call in (
        lambda: bob.vector_stores.retrieve(store.id),
        lambda: bob.vector_stores.delete(store.id),
        lambda: bob.vector_stores.search(store.id, query="refund"),
        lambda: bob.vector_stores.files.list(vector_store_id=store.id),
        lambda: bob.vector_stores.files.retrieve(file_id, vector_store_id=store.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert store.id not in [s.id for s in bob.vector_stores.list()]
    own = bob.vector_stores.create(name="bob")
    with pytest.raises(openai.NotFoundError):  # alice's file cannot be attached by bob
        bob.vector_stores.files.create(vector_store_id=own.id, file_id=file_id)
    assert alice.vector_stores.retrieve(store.id).id == store.id


def test_invalid_requests_are_400(alice: openai.OpenAI) -> None:
    store = alice.vector_stores.create(name="bad")
    with pytest.raises(openai.BadRequestError) as caught:
        alice.vector_stores.create(
            chunking_strategy={
                "type": "static",
                "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150},
            }
        )
    assert "chunking_strategy" in str(caught.value.body["param"])  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        alice.vector_stores.search(store.id, query="x", max_num_results=51)
    with pytest.raises(openai.BadRequestError):
        alice.vector_stores.file_batches.create(vector_store_id=store.id)  # type: ignore[call-arg]
