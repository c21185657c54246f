"""`/v1/embeddings` and Portway's own model calls go through the one door: key rate limits,
budget holds, routing (retries, fallbacks) and a ledger row, exactly like chat."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest

from tests.assistants.support import tool_call
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

MASTER = "sk-master-test"
PRICE = {"input": 1000.0, "output": 1000.0}  # $0.001 per token: easy budgets
SYSTEM = "indexer-bot"


@pytest.fixture(scope="module")
def door(
    start_portway: PortwayFactory, fake_openai_server: FakeOpenAI, backup_upstream: FakeOpenAI
) -> PortwayServer:
    primary, second = fake_openai_server.base_url, backup_upstream.base_url
    return start_portway(
        {
            "master_key": MASTER,
            "keys": {"cache_ttl_seconds": 0.2},
            "models": [
                fake_model("emb", primary, pricing=PRICE),
                fake_model("emb-pair", primary, pricing=PRICE, priority=0),
                fake_model("emb-pair", second, pricing=PRICE, priority=1),
                fake_model("emb-brk", primary, pricing=PRICE, priority=0),
                fake_model("emb-brk", second, pricing=PRICE, priority=1),
                fake_model("emb-main", primary, pricing=PRICE),
                fake_model("emb-backup", second, pricing=PRICE),
                fake_model("judge", primary, pricing=PRICE),
                fake_model("large", second, pricing=PRICE),
                fake_model("small", second, pricing=PRICE),
                # A chat-only provider (never reached: the router refuses before any call).
                {
                    "name": "claude",
                    "provider": "anthropic",
                    "model": "claude-x",
                    "base_url": "http://127.0.0.1:9",
                    "api_key": "x",
                },
            ],
            "router": {
                "emb-pair": {"strategy": "priority", "retries": 1},
                "emb-main": {"retries": 0, "fallbacks": ["emb-backup"]},
                "emb-brk": {
                    "strategy": "priority",
                    "retries": 1,
                    "breaker": {"consecutive_failures": 1, "cooldown": "60s"},
                },
                "judge": {"retries": 0},
                "smart": {
                    "classifier": {"model": "judge", "timeout": "5s"},
                    "rules": [
                        {"when": {"classified_as": "complex"}, "use": "large"},
                        {"use": "small"},
                    ],
                },
            },
            "retrieval": {"embedding_model": "emb"},
            "system_principal": {"key_id": SYSTEM},
        }
    )


def embed(server: PortwayServer, key: str, model: str = "emb", text: Any = "hi") -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/embeddings",
        json={"model": model, "input": text},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def usage(server: PortwayServer, group_by: str, **filters: str) -> list[dict[str, Any]]:
    with server.admin(MASTER) as http:
        response = http.get("/v1/admin/usage", params={"group_by": group_by, **filters})
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    return error  # type: ignore[no-any-return]


def test_rpm_limit_applies_to_embeddings(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    key = door.create_key(MASTER, rpm=3)["key"]
    for remaining in (2, 1, 0):
        response = embed(door, key)
        assert response.status_code == 200, response.text
        assert_matches("CreateEmbeddingResponse", response.json())
        assert response.headers["x-ratelimit-limit-requests"] == "3"
        assert response.headers["x-ratelimit-remaining-requests"] == str(remaining)
    refused = embed(door, key)
    assert_openai_error(refused, 429, "rate_limit_exceeded")
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(refused.headers["retry-after"]) >= 1
    assert len(fake_openai.requests) == 3  # the refused call never reached the upstream


def test_exhausted_budget_refuses_embeddings_as_it_refuses_chat(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = door.create_key(MASTER, max_budget=0.0, budget_period="daily")["key"]
    refused = embed(door, key)
    error = assert_openai_error(refused, 429, "insufficient_quota")
    chat = httpx.post(
        f"{door.base_url}/chat/completions",
        json={"model": "emb", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        headers={"authorization": f"Bearer {key}"},
    )
    assert_openai_error(chat, 429, "insufficient_quota")
    assert chat.json()["error"]["type"] == error["type"]
    assert fake_openai.requests == []


def test_budget_holds_the_counted_input_at_the_input_price(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    # ~100 input tokens at $0.001 cost ~$0.10 at most: more than the $0.05 left.
    key = door.create_key(MASTER, max_budget=0.05, budget_period="daily")
    refused = embed(door, key["key"], text="word " * 100)
    assert_openai_error(refused, 429, "insufficient_quota")
    assert "may cost up to $0.1" in refused.json()["error"]["message"]
    assert fake_openai.requests == []
    # A short input fits; it is settled at the upstream's usage (1 token per input here).
    assert embed(door, key["key"], text=["a b c", "d e f"]).status_code == 200
    with door.admin(MASTER) as http:
        budget = http.get(f"/v1/admin/keys/{key['id']}").json()["budget"]
    assert budget["spend"] == pytest.approx(0.002)
    assert budget["reserved"] == 0


def test_embeddings_are_in_the_ledger_and_in_own_usage(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = door.create_key(MASTER, user="emb-user")
    client = door.sdk(key["key"])
    result = client.embeddings.create(model="emb", input=["one", "two", "three"])
    assert len(result.data) == 3 and result.usage.prompt_tokens == 3
    client.embeddings.create(model="emb", input="four")

    own = httpx.get(
        f"{door.base_url}/usage",
        params={"group_by": "endpoint,model"},
        headers={"authorization": f"Bearer {key['key']}"},
    ).json()["data"]
    assert own == [
        {
            **own[0],
            "endpoint": "embeddings",
            "model": "emb",
            "requests": 2,
            "prompt_tokens": 4,
            "completion_tokens": 0,
            "errors": 0,
        }
    ]
    assert own[0]["cost"] == pytest.approx(0.004)
    [row] = usage(door, "deployment,user", key=key["id"])
    assert (row["deployment"], row["user"]) == ("emb", "emb-user")


def test_embeddings_retry_on_another_deployment(
    door: PortwayServer, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    fake_openai.script_embeddings(Fail(500))
    key = door.create_key(MASTER)
    response = embed(door, key["key"], model="emb-pair")
    assert response.status_code == 200, response.text
    assert_matches("CreateEmbeddingResponse", response.json())
    assert response.json()["model"] == "emb-pair"
    assert response.headers["x-portway-attempts"] == "2"
    assert response.headers["x-portway-deployment"] == "emb-pair#1"
    assert [r.path for r in fake_openai.requests] == ["/v1/embeddings"]
    assert [r.body["model"] for r in backup.requests] == ["upstream-emb-pair"]
    [row] = usage(door, "deployment", key=key["id"])
    assert row["deployment"] == "emb-pair#1" and row["requests"] == 1


def test_a_failing_embedding_deployment_opens_its_circuit(
    door: PortwayServer, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    fake_openai.script_embeddings(Fail(500))
    key = door.create_key(MASTER)["key"]
    first = embed(door, key, model="emb-brk")
    assert (first.status_code, first.headers["x-portway-attempts"]) == (200, "2")
    second = embed(door, key, model="emb-brk")
    assert second.status_code == 200
    assert second.headers["x-portway-attempts"] == "1"  # the open circuit is not tried
    assert second.headers["x-portway-deployment"] == "emb-brk#1"
    assert len(fake_openai.requests) == 1 and len(backup.requests) == 2
    health = httpx.get(f"{door.url}/health/deployments").json()["data"]
    states = {row["id"]: row["state"] for row in health}
    assert (states["emb-brk"], states["emb-brk#1"]) == ("open", "closed")


def test_embeddings_fall_back_to_another_group(
    door: PortwayServer, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    fake_openai.script_embeddings(Fail(503))
    response = embed(door, door.create_key(MASTER)["key"], model="emb-main")
    assert response.status_code == 200, response.text
    assert response.headers["x-portway-fallback"] == "emb-backup"
    assert response.json()["model"] == "emb-backup"
    assert len(backup.requests) == 1


def test_a_failing_group_without_fallback_gives_the_upstream_error(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script_embeddings(
        Fail(400, "bad input", code="invalid_value", error_type="invalid_request")
    )
    key = door.create_key(MASTER)
    response = embed(door, key["key"])
    assert_openai_error(response, 400, "upstream_bad_request")
    [row] = usage(door, "status", key=key["id"])
    assert row["status"] == 400 and row["errors"] == 1


@pytest.mark.parametrize("model", ["claude", "smart"])
def test_models_that_do_not_embed_are_refused_with_400(door: PortwayServer, model: str) -> None:
    key = door.create_key(MASTER)
    error = assert_openai_error(embed(door, key["key"], model=model), 400, "model_not_supported")
    assert error["param"] == "model"
    [row] = usage(door, "status", key=key["id"])
    assert row["status"] == 400 and row["cost"] == 0


def test_the_classifier_is_billed_to_the_caller(
    door: PortwayServer, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    # The key may name only the virtual model; its classifier still runs, on its bill.
    key = door.create_key(MASTER, models=["smart"], max_budget=10.0, budget_period="daily")
    fake_openai.script(Reply(content="complex", prompt_tokens=20, completion_tokens=1))
    response = httpx.post(
        f"{door.base_url}/chat/completions",
        json={"model": "smart", "messages": [{"role": "user", "content": "Prove it."}]},
        headers={"authorization": f"Bearer {key['key']}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "large"
    rows = {row["endpoint"]: row for row in usage(door, "endpoint,model", key=key["id"])}
    assert set(rows) == {"classifier", "chat.completions"}
    assert (rows["classifier"]["model"], rows["classifier"]["prompt_tokens"]) == ("judge", 20)
    assert rows["classifier"]["cost"] == pytest.approx(0.021)
    assert rows["chat.completions"]["model"] == "large"
    with door.admin(MASTER) as http:
        budget = http.get(f"/v1/admin/keys/{key['id']}").json()["budget"]
    assert budget["spend"] == pytest.approx(0.021 + 0.012)


def test_retrieval_embeddings_go_through_the_door(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    # The key may name no model: the operator chose the embedding model, it only pays.
    key = door.create_key(MASTER, models=["none"], max_budget=10.0, budget_period="daily")
    client = door.sdk(key["key"])
    text = "Refunds are paid within five days.\n" * 20
    file_id = client.files.create(
        file=("refunds.txt", io.BytesIO(text.encode())), purpose="assistants"
    ).id
    store = client.vector_stores.create(name="docs", file_ids=[file_id])
    done = client.vector_stores.files.poll(file_id, vector_store_id=store.id, poll_interval_ms=20)
    assert done.status == "completed"
    assert client.vector_stores.search(store.id, query="refund").data
    embedded = [r for r in fake_openai.requests if r.path == "/v1/embeddings"]
    assert len(embedded) == 2  # the chunks, then the query

    # Indexing has no caller behind it: the system principal; the query is the key's.
    [indexing] = usage(door, "endpoint,model", key=SYSTEM)
    [query] = usage(door, "endpoint,model", key=key["id"])
    assert (indexing["endpoint"], query["endpoint"]) == ("retrieval.index", "retrieval.search")
    for row in (indexing, query):
        assert row["model"] == "emb" and row["requests"] == 1 and row["errors"] == 0
        assert row["prompt_tokens"] >= 1 and row["cost"] > 0
    with door.admin(MASTER) as http:
        budget = http.get(f"/v1/admin/keys/{key['id']}").json()["budget"]
    assert budget["spend"] == pytest.approx(query["cost"])


@pytest.fixture(scope="module")
def limited_system(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "models": [fake_model("emb", fake_openai_server.base_url, pricing=PRICE)],
            "retrieval": {"embedding_model": "emb"},
            "system_principal": {"key_id": SYSTEM, "max_budget": 0.0},
        }
    )


def test_the_system_principal_budget_binds_internal_calls(
    limited_system: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    client = limited_system.sdk(MASTER)
    file_id = client.files.create(
        file=("a.txt", io.BytesIO(b"Shipping takes three days.")), purpose="assistants"
    ).id
    store = client.vector_stores.create(name="docs", file_ids=[file_id])
    done = client.vector_stores.files.poll(file_id, vector_store_id=store.id, poll_interval_ms=20)
    assert done.status == "completed"  # indexed for full-text search only
    assert [r for r in fake_openai.requests if r.path == "/v1/embeddings"] == []
    [row] = usage(limited_system, "endpoint,status", key=SYSTEM)
    assert (row["endpoint"], row["status"], row["cost"]) == ("retrieval.index", 429, 0)


@pytest.fixture(scope="module")
def semantic_cache(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "models": [
                fake_model("chat", fake_openai_server.base_url, pricing=PRICE),
                fake_model("emb", fake_openai_server.base_url, pricing=PRICE),
            ],
            "cache": {"enabled": True, "semantic": {"enabled": True, "embedding_model": "emb"}},
            "system_principal": {"key_id": SYSTEM},
        }
    )


def test_semantic_cache_embeddings_go_through_the_door(
    semantic_cache: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = semantic_cache.create_key(MASTER)["key"]
    client = semantic_cache.sdk(key)
    for _ in range(2):
        client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Name a colour."}], temperature=0
        )
    assert [r.path for r in fake_openai.requests].count("/v1/chat/completions") == 1
    [row] = usage(semantic_cache, "endpoint,model", key=SYSTEM)
    assert (row["endpoint"], row["model"]) == ("cache.embeddings", "emb")
    assert row["requests"] >= 1 and row["prompt_tokens"] >= 1 and row["cost"] > 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's beta.assistants
def test_file_search_in_a_run_embeds_the_query_on_the_run_creators_bill(
    door: PortwayServer, fake_openai: FakeOpenAI, backup: FakeOpenAI
) -> None:
    key = door.create_key(MASTER, max_budget=10.0, budget_period="daily")
    client = door.sdk(key["key"])
    file_id = client.files.create(
        file=("ship.txt", io.BytesIO(b"Orders ship from Lisbon.")), purpose="assistants"
    ).id
    store = client.vector_stores.create(name="docs", file_ids=[file_id])
    client.vector_stores.files.poll(file_id, vector_store_id=store.id, poll_interval_ms=20)
    assistant = client.beta.assistants.create(
        model="large",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "From where?"}])
    call = tool_call("call_fs", "file_search", '{"query": "ship"}')
    backup.script(Reply(tool_calls=[call]), Reply(content="From Lisbon [1]."))
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    rows = {row["endpoint"]: row for row in usage(door, "endpoint", key=key["id"])}
    assert rows["retrieval.search"]["requests"] == 1
    assert rows["assistants.runs"]["requests"] == 2  # the run's two model calls
    queries = [r.body["input"] for r in fake_openai.requests if r.path == "/v1/embeddings"]
    assert queries[-1] == ["ship"]


def test_embeddings_pass_a_cache_enabled_pipeline_uncached(
    semantic_cache: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = semantic_cache.create_key(MASTER)
    for _ in range(2):
        response = embed(semantic_cache, key["key"], text="same text")
        assert response.status_code == 200, response.text
        assert "x-portway-cache" not in response.headers
    assert [r.path for r in fake_openai.requests] == ["/v1/embeddings"] * 2
    [row] = usage(semantic_cache, "endpoint", key=key["id"])
    assert (row["endpoint"], row["requests"], row["cache_hits"]) == ("embeddings", 2, 0)
