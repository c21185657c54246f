"""The request log over HTTP: entries made by SDK calls, then read back through
`GET /v1/admin/requests` (filters, cursor pagination, tenant isolation) and `/{id}`."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer

MASTER = "sk-master-log"
PRICING = {"input": 1000.0, "output": 2000.0}  # per million tokens


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "keys": {"cache_ttl_seconds": 0},
            "cache": {"enabled": True},
            "request_log": {"flush_interval_ms": 10},
            "models": [
                fake_model("fake-gpt", fake_openai_server.base_url, pricing=PRICING),
                fake_model("other-model", fake_openai_server.base_url),
                fake_model(
                    "guarded",
                    fake_openai_server.base_url,
                    guardrails=[{"name": "pii", "mode": "redact"}],
                ),
            ],
        }
    )


def new_key(server: PortwayServer, **fields: Any) -> tuple[str, str]:
    """A fresh virtual key of a team of its own: (key id, secret)."""
    created = server.create_key(MASTER, team=f"team-{uuid.uuid4().hex[:8]}", **fields)
    return created["id"], created["key"]


def logged(server: PortwayServer, request_id: str) -> None:
    """Wait until the request is in the log: its row is queued after its last byte."""
    deadline = time.monotonic() + 10
    while detail(server, request_id).status_code == 404:
        assert time.monotonic() < deadline, f"{request_id} never reached the request log"
        time.sleep(0.01)


def chat_raw(
    server: PortwayServer, client: openai.OpenAI, model: str = "fake-gpt", **extra: Any
) -> Any:
    """A chat call (raw: its headers are read), once its request is in the log."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello log"}], **extra
    )
    logged(server, raw.headers["x-request-id"])
    return raw


def failed_id(server: PortwayServer, error: pytest.ExceptionInfo[openai.APIStatusError]) -> str:
    request_id = error.value.response.headers["x-request-id"]
    logged(server, request_id)
    return str(request_id)


def requests(server: PortwayServer, key: str = MASTER, **params: Any) -> httpx.Response:
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {key}"}) as http:
        return http.get("/v1/admin/requests", params=params)


def detail(server: PortwayServer, request_id: str, key: str = MASTER) -> httpx.Response:
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {key}"}) as http:
        return http.get(f"/v1/admin/requests/{request_id}")


def test_a_chat_call_is_logged_with_its_request_id_usage_and_spans(
    server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key_id, secret = new_key(server, name="logger-app", user="ana")
    fake_openai.script(Reply(content="logged", prompt_tokens=11, completion_tokens=4))
    raw = chat_raw(server, server.sdk(secret))
    request_id = raw.headers["x-request-id"]
    assert float(raw.headers["x-portway-overhead-ms"]) >= 0

    listed = requests(server, key_id=key_id).json()
    assert listed["object"] == "list" and listed["has_more"] is False
    assert [entry["id"] for entry in listed["data"]] == [request_id]
    entry = listed["data"][0]
    assert entry["object"] == "request_log"
    assert entry["endpoint"] == "/v1/chat/completions"
    assert (entry["key_id"], entry["key_name"], entry["user"]) == (key_id, "logger-app", "ana")
    assert entry["model"] == "fake-gpt" and entry["deployment"] == "fake-gpt"
    assert entry["provider"] == "openai"
    assert entry["status_code"] == 200 and entry["error"] is None
    assert (entry["prompt_tokens"], entry["completion_tokens"]) == (11, 4)
    assert entry["cost_usd"] == pytest.approx((11 * 1000 + 4 * 2000) / 1e6)
    assert entry["attempts"] == 1 and entry["stream"] is False
    assert entry["cache"] is None and entry["guardrails"] == []  # not cacheable: bypassed
    assert entry["latency_ms"] > 0 and entry["ttft_ms"] is None
    assert abs(entry["created_at"] - time.time()) < 60

    shown = detail(server, request_id).json()
    assert shown["id"] == request_id
    assert shown["request_body"] is None and shown["response_body"] is None  # default: off
    kinds = [(span["kind"], span["name"]) for span in shown["spans"]]
    assert ("call", "chat fake-gpt") in kinds
    assert ("stage", "router") in kinds
    assert ("attempt", "attempt fake-gpt") in kinds
    call = next(span for span in shown["spans"] if span["kind"] == "call")
    assert call["attributes"]["gen_ai.usage.input_tokens"] == 11
    assert all(span["duration_ms"] >= 0 and span["start_ms"] >= 0 for span in shown["spans"])


def test_streams_errors_and_cache_hits_are_logged(
    server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key_id, secret = new_key(server)
    client = server.sdk(secret)
    stream = client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "s"}], stream=True
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    fake_openai.script(Fail(500), Fail(500), Fail(500))
    with pytest.raises(openai.InternalServerError) as broken:
        client.chat.completions.create(
            model="other-model", messages=[{"role": "user", "content": "y"}]
        )
    failed_id(server, missing)
    failed_id(server, broken)
    first = chat_raw(server, client, temperature=0, seed=7)
    second = chat_raw(server, client, temperature=0, seed=7)

    entries = requests(server, key_id=key_id).json()["data"]
    by_id = {entry["id"]: entry for entry in entries}
    assert len(entries) == 5
    assert entries[0]["id"] == second.headers["x-request-id"]  # newest first
    assert by_id[second.headers["x-request-id"]]["cache"] == "hit"
    assert by_id[second.headers["x-request-id"]]["cost_usd"] == 0
    assert by_id[first.headers["x-request-id"]]["cache"] == "miss"
    streamed = entries[-1]
    assert streamed["stream"] is True and streamed["ttft_ms"] is not None
    assert streamed["ttft_ms"] <= streamed["latency_ms"]
    not_found = by_id[missing.value.response.headers["x-request-id"]]
    assert not_found["status_code"] == 404
    assert not_found["error"]["code"] == "model_not_found"
    assert not_found["model"] == "no-such-model"
    failed = next(entry for entry in entries if entry["model"] == "other-model")
    assert failed["status_code"] >= 500 and failed["error"]["type"]
    assert failed["attempts"] >= 2
    assert failed["error"]["message"]


def test_filters(server: PortwayServer, fake_openai: FakeOpenAI) -> None:
    key_id, secret = new_key(server, user="filter-user")
    team = requests(server, key_id=key_id).json()  # nothing yet
    assert team["data"] == [] and team["first_id"] is None
    client = server.sdk(secret)
    before = time.time()
    chat_raw(server, client, model="fake-gpt")
    chat_raw(server, client, model="other-model")
    fake_openai.script(Fail(400, message="bad", error_type="invalid_request_error"))
    with pytest.raises(openai.BadRequestError) as bad:
        chat_raw(server, client, model="other-model")
    failed_id(server, bad)
    after = time.time()

    def ids(**params: Any) -> list[str]:
        response = requests(server, key_id=key_id, **params)
        assert response.status_code == 200, response.text
        return [entry["model"] for entry in response.json()["data"]]

    assert ids() == ["other-model", "other-model", "fake-gpt"]
    assert ids(model="fake-gpt") == ["fake-gpt"]
    assert ids(status="error") == ["other-model"]
    assert ids(status="success") == ["other-model", "fake-gpt"]
    assert ids(status="400") == ["other-model"]
    assert ids(status="429") == []
    assert ids(user="filter-user") == ids()
    assert ids(user="someone-else") == []
    assert ids(endpoint="/v1/chat/completions") == ids()
    assert ids(endpoint="/v1/embeddings") == []
    assert ids(since=before - 1, until=after + 1) == ids()
    assert ids(since=after + 1) == []
    assert ids(min_latency_ms=10_000_000) == []
    assert len(ids(min_latency_ms=0)) == 3
    listed = requests(server, key_id=key_id).json()["data"]
    assert ids(team=listed[0]["team"]) == ids()

    for params in ({"status": "bad"}, {"since": "yesterday"}, {"limit": 0}, {"limit": 201}):
        response = requests(server, **params)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_cursor_pagination_walks_every_entry_once(
    server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key_id, secret = new_key(server)
    client = server.sdk(secret)
    sent = [chat_raw(server, client).headers["x-request-id"] for _ in range(7)]
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"key_id": key_id, "limit": 3}
        if after is not None:
            params["after"] = after
        page = requests(server, **params).json()
        pages += 1
        seen += [entry["id"] for entry in page["data"]]
        assert page["last_id"] == page["data"][-1]["id"]
        assert page["first_id"] == page["data"][0]["id"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert pages == 3
    assert seen == list(reversed(sent))


def test_a_virtual_key_sees_only_its_own_requests(
    server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    _alice_id, alice = new_key(server)
    bob_id, bob = new_key(server)
    alices = chat_raw(server, server.sdk(alice)).headers["x-request-id"]
    bobs = chat_raw(server, server.sdk(bob)).headers["x-request-id"]

    own = requests(server, alice).json()["data"]
    assert [entry["id"] for entry in own] == [alices]
    # Asking for another key's entries changes nothing: the key is forced.
    assert [e["id"] for e in requests(server, alice, key_id=bob_id).json()["data"]] == [alices]
    assert requests(server, alice, after=bobs).json()["data"] == []
    assert detail(server, alices, alice).status_code == 200
    hidden = detail(server, bobs, alice)
    assert hidden.status_code == 404
    assert hidden.json()["error"]["type"] == "invalid_request_error"
    assert set(hidden.json()["error"]) == {"message", "type", "param", "code"}
    assert detail(server, bobs).json()["key_id"] == bob_id  # the master key sees everything
    assert detail(server, "req_does_not_exist").status_code == 404
    unauthenticated = httpx.get(f"{server.url}/v1/admin/requests")
    assert unauthenticated.status_code == 401


def test_bodies_are_kept_only_when_the_key_allows_it(
    server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    _, plain = new_key(server)
    _, keeper = new_key(server, metadata={"request_log_bodies": True})
    _, private = new_key(server, metadata={"request_log_bodies": True}, no_store=True)
    fake_openai.script(Reply(content="secret answer"))
    kept = detail(server, chat_raw(server, server.sdk(keeper)).headers["x-request-id"]).json()
    assert kept["request_body"]["messages"] == [{"role": "user", "content": "hello log"}]
    assert kept["response_body"]["choices"][0]["message"]["content"] == "secret answer"
    for secret in (plain, private):
        shown = detail(server, chat_raw(server, server.sdk(secret)).headers["x-request-id"]).json()
        assert shown["request_body"] is None and shown["response_body"] is None


def test_the_client_request_id_is_the_entry_id(server: PortwayServer, fake_openai) -> None:
    key_id, secret = new_key(server)
    mine = f"client-{uuid.uuid4().hex}"
    raw = chat_raw(server, server.sdk(secret, default_headers={"x-request-id": mine}))
    assert raw.headers["x-request-id"] == mine
    assert detail(server, mine).json()["key_id"] == key_id


def test_guardrail_actions_are_listed(server: PortwayServer, fake_openai: FakeOpenAI) -> None:
    _key_id, secret = new_key(server)
    raw = server.sdk(secret).chat.completions.with_raw_response.create(
        model="guarded", messages=[{"role": "user", "content": "mail me at ana@example.com"}]
    )
    entry = detail(server, raw.headers["x-request-id"]).json()
    assert "pii:redacted" in entry["guardrails"]
    assert "ana@example.com" not in str(entry)  # no content: the key does not keep bodies


def test_a_redacted_request_keeps_no_bodies(server: PortwayServer, fake_openai: FakeOpenAI) -> None:
    _, keeper = new_key(server, metadata={"request_log_bodies": True})
    raw = server.sdk(keeper).chat.completions.with_raw_response.create(
        model="guarded", messages=[{"role": "user", "content": "mail me at ana@example.com"}]
    )
    logged(server, raw.headers["x-request-id"])
    entry = detail(server, raw.headers["x-request-id"]).json()
    assert "pii:redacted" in entry["guardrails"]
    assert entry["request_body"] is None and entry["response_body"] is None
    assert "ana@example.com" not in str(entry)


def test_bodies_follow_the_callers_retention_and_user_deletion(
    server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    user = f"erasable-{uuid.uuid4().hex[:6]}"
    _, keeper = new_key(server, user=user, metadata={"request_log_bodies": True})
    # A zero-retention caller: no bodies at all (shorter retentions are purged in time).
    _, short = new_key(server, metadata={"request_log_bodies": True}, retention="none")
    kept = chat_raw(server, server.sdk(keeper)).headers["x-request-id"]
    brief = chat_raw(server, server.sdk(short)).headers["x-request-id"]
    assert detail(server, kept).json()["request_body"] is not None
    assert detail(server, brief).json()["request_body"] is None

    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {MASTER}"}) as http:
        deleted = http.delete(f"/v1/admin/users/{user}/data")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"]["request_log_bodies"] == 1
    shown = detail(server, kept).json()
    assert shown["request_body"] is None and shown["response_body"] is None
    assert shown["user"] == user and shown["prompt_tokens"] > 0  # the metadata stays
