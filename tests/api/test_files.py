"""`/v1/files` through the official SDK: upload, list, retrieve, content, delete, limits."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory
from tests.fakes.auth import TokenAuthenticator, team_key
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

MAX_BYTES = 50_000


@pytest.fixture(scope="module")
def storage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, storage_dir: Path) -> PortwayServer:
    server = start_portway(
        {
            "models": [{"name": "m", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"}],
            "files": {"storage_dir": str(storage_dir), "max_bytes": MAX_BYTES},
            "max_request_bytes": 4096,  # JSON bodies; uploads have their own limit
        }
    )
    server.app.state.services.authenticator = TokenAuthenticator(
        {"key-a": team_key("a"), "key-b": team_key("b")}
    )
    return server


def test_upload_list_retrieve_content_delete(alice: openai.OpenAI) -> None:
    payload = b"# Notes\nPortway keeps files on disk.\n"
    response = alice.files.with_raw_response.create(
        file=("notes.md", io.BytesIO(payload)), purpose="assistants"
    )
    assert_matches("OpenAIFile", response.http_response.json())
    created = response.parse()
    assert (created.filename, created.bytes, created.purpose) == (
        "notes.md",
        len(payload),
        "assistants",
    )
    assert created.id.startswith("file-")

    assert alice.files.retrieve(created.id) == created
    assert alice.files.content(created.id).read() == payload
    listing = alice.files.with_raw_response.list().http_response.json()
    assert_matches("ListFilesResponse", listing)
    assert created.id in [item["id"] for item in listing["data"]]

    deleted = alice.files.delete(created.id)
    assert_matches("DeleteFileResponse", deleted.model_dump(mode="json", exclude_unset=True))
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        alice.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        alice.files.content(created.id)


def test_list_filters_by_purpose_and_pages_with_cursors(server: PortwayServer) -> None:
    carol = TokenAuthenticator({"key-c": team_key("c")})
    server.app.state.services.authenticator = carol
    try:
        client = server.sdk("key-c")
        ids = [
            client.files.create(file=(f"f{i}.txt", io.BytesIO(b"x")), purpose=purpose).id
            for i, purpose in enumerate(["assistants", "user_data", "assistants"])
        ]
        first = client.files.list(limit=1, order="asc", purpose="assistants")
        assert [f.id for f in first.data] == [ids[0]] and first.has_more
        second = client.files.list(limit=1, order="asc", purpose="assistants", after=ids[0])
        assert [f.id for f in second.data] == [ids[2]] and not second.has_more
        everything = [f.id for f in client.files.list(limit=1)]  # SDK follows the cursors
        assert everything == list(reversed(ids))
    finally:
        server.app.state.services.authenticator = TokenAuthenticator(
            {"key-a": team_key("a"), "key-b": team_key("b")}
        )


def test_other_tenants_get_404_and_see_nothing(alice: openai.OpenAI, bob: openai.OpenAI) -> None:
    created = alice.files.create(
        file=("secret.txt", io.BytesIO(b"alice only")), purpose="user_data"
    )
    for call in (bob.files.retrieve, bob.files.content, bob.files.delete):
        with pytest.raises(openai.NotFoundError) as caught:
            call(created.id)
        assert caught.value.body["code"] == "not_found"  # type: ignore[index]
    assert created.id not in [f.id for f in bob.files.list()]
    assert alice.files.retrieve(created.id).id == created.id


def test_size_limit_answers_413(alice: openai.OpenAI) -> None:
    # Just over the file limit: the storage layer refuses it while copying.
    with pytest.raises(openai.APIStatusError) as caught:
        alice.files.create(
            file=("big.txt", io.BytesIO(b"x" * (MAX_BYTES + 1))), purpose="assistants"
        )
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "file_too_large"  # type: ignore[index]
    # Far over it: the edge refuses the body from its Content-Length before reading it.
    with pytest.raises(openai.APIStatusError) as caught:
        alice.files.create(
            file=("huge.txt", io.BytesIO(b"x" * (4 * MAX_BYTES))), purpose="assistants"
        )
    assert caught.value.status_code == 413
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert all(f.filename not in ("big.txt", "huge.txt") for f in alice.files.list())


def test_client_filenames_never_become_paths(alice: openai.OpenAI, storage_dir: Path) -> None:
    created = alice.files.create(
        file=("../../../etc/evil.txt", io.BytesIO(b"payload")), purpose="assistants"
    )
    assert created.filename == "evil.txt"
    stored = [p for p in storage_dir.rglob("*") if p.is_file() and p.read_bytes() == b"payload"]
    assert [p.name for p in stored] == [created.id]
    assert all(storage_dir in p.resolve().parents for p in stored)


def test_bad_uploads_are_400(server: PortwayServer, alice: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        alice.files.create(file=("a.txt", io.BytesIO(b"x")), purpose="fine-tune-results")  # type: ignore[arg-type]
    assert caught.value.body["param"] == "purpose"  # type: ignore[index]
    headers = {"authorization": "Bearer key-a"}
    missing = httpx.post(
        f"{server.base_url}/files",
        data={"purpose": "assistants"},
        files={"other": ("a.txt", b"x")},
        headers=headers,
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    as_json = httpx.post(
        f"{server.base_url}/files", json={"purpose": "assistants"}, headers=headers
    )
    assert as_json.status_code == 415
    bad_limit = httpx.get(f"{server.base_url}/files", params={"limit": "0"}, headers=headers)
    assert bad_limit.status_code == 400 and bad_limit.json()["error"]["param"] == "limit"


def test_expires_after_sets_expires_at(alice: openai.OpenAI) -> None:
    created = alice.files.create(
        file=("short.txt", io.BytesIO(b"x")),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert created.expires_at == created.created_at + 3600


def test_uploads_have_their_own_body_limit(server: PortwayServer, alice: openai.OpenAI) -> None:
    big = b"y" * (MAX_BYTES - 10)  # far above max_request_bytes, within files.max_bytes
    created = alice.files.create(file=("big.txt", io.BytesIO(big)), purpose="assistants")
    assert alice.files.content(created.id).read() == big
    json_body = httpx.post(
        f"{server.base_url}/vector_stores",
        json={"name": "x" * 5000},
        headers={"authorization": "Bearer key-a"},
    )
    assert json_body.status_code == 413
