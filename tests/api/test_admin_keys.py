"""Virtual keys end to end: admin API lifecycle, auth outcomes, limits, budgets, tenancy."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-master-test"
CACHE_TTL = 0.2


@pytest.fixture(scope="module")
def secured(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    pricing = {"input": 1000.0, "output": 1000.0}  # $0.001 per token: easy budgets
    return start_portway(
        {
            "master_key": MASTER,
            "keys": {"cache_ttl_seconds": CACHE_TTL},
            "models": [
                fake_model("fake-gpt", fake_openai_server.base_url, pricing=pricing),
                fake_model("other-model", fake_openai_server.base_url),
            ],
        }
    )


def chat(server: PortwayServer, key: str, model: str = "fake-gpt", **extra: Any) -> Any:
    return server.sdk(key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **extra
    )


def wait_for_cache() -> None:
    time.sleep(CACHE_TTL * 1.5)


def test_key_lifecycle_through_the_admin_api(secured: PortwayServer, fake_openai) -> None:
    created = secured.create_key(
        MASTER, name="app", user="alice", team="red", metadata={"env": "t"}
    )
    secret = created["key"]
    assert secret.startswith("pw-") and created["prefix"] == secret[:10]
    assert created["status"] == "active" and created["user"] == "alice"

    assert chat(secured, secret).choices[0].message.content == "echo: hi"

    with secured.admin(MASTER) as http:
        shown = http.get(f"/v1/admin/keys/{created['id']}").json()
        listed = http.get("/v1/admin/keys", params={"team": "red"}).json()
    assert "key" not in shown and shown["metadata"] == {"env": "t"}
    assert created["id"] in [item["id"] for item in listed["data"]]
    assert all("key" not in item for item in listed["data"])

    with secured.admin(MASTER) as http:
        rotated = http.post(f"/v1/admin/keys/{created['id']}/rotate").json()
    new_secret = rotated["key"]
    assert new_secret != secret
    assert chat(secured, new_secret).choices
    with pytest.raises(openai.AuthenticationError):
        chat(secured, secret)

    with secured.admin(MASTER) as http:
        revoked = http.post(f"/v1/admin/keys/{created['id']}/revoke").json()
    assert revoked["status"] == "revoked"
    with pytest.raises(openai.AuthenticationError) as caught:
        chat(secured, new_secret)
    assert caught.value.body["code"] == "revoked_api_key"  # type: ignore[index]


def test_unknown_and_expired_keys_get_401(secured: PortwayServer) -> None:
    with pytest.raises(openai.AuthenticationError) as unknown:
        chat(secured, "pw-" + "x" * 43)
    assert unknown.value.status_code == 401
    # Long enough for the first call to land before expiry on a loaded machine.
    expiring = secured.create_key(MASTER, expires_in=2.0)
    assert chat(secured, expiring["key"]).choices
    time.sleep(2.1)
    with pytest.raises(openai.AuthenticationError) as expired:
        chat(secured, expiring["key"])
    assert expired.value.body["code"] == "expired_api_key"  # type: ignore[index]


def test_model_outside_the_key_is_not_found(secured: PortwayServer) -> None:
    key = secured.create_key(MASTER, models=["fake-*"])["key"]
    assert chat(secured, key).choices
    with pytest.raises(openai.NotFoundError) as caught:
        chat(secured, key, model="other-model")
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]
    listed = secured.sdk(key).models.list()
    assert [model.id for model in listed.data] == ["fake-gpt"]


def test_virtual_keys_cannot_use_the_admin_api(secured: PortwayServer) -> None:
    key = secured.create_key(MASTER)["key"]
    response = httpx.get(f"{secured.url}/v1/admin/keys", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_key_update_takes_effect_after_the_cache_ttl(secured: PortwayServer) -> None:
    created = secured.create_key(MASTER)
    with secured.admin(MASTER) as http:
        response = http.patch(f"/v1/admin/keys/{created['id']}", json={"models": ["none"]})
    assert response.status_code == 200 and response.json()["models"] == ["none"]
    wait_for_cache()
    with pytest.raises(openai.NotFoundError):
        chat(secured, created["key"])


def test_key_rpm_limit_sets_headers_and_429(secured: PortwayServer) -> None:
    key = secured.create_key(MASTER, rpm=2)["key"]
    client = secured.sdk(key)
    first = client.chat.completions.with_raw_response.create(
        model="fake-gpt", messages=[{"role": "user", "content": "a"}]
    )
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"]
    chat(secured, key)
    with pytest.raises(openai.RateLimitError) as caught:
        chat(secured, key)
    assert caught.value.response.headers["retry-after"]
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert caught.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]


def test_budget_exhaustion_gives_insufficient_quota(secured: PortwayServer, fake_openai) -> None:
    # Each call: 7 + 5 tokens at $0.001 = $0.012; worst case with max_tokens=5 is a bit more.
    created = secured.create_key(MASTER, max_budget=0.05, budget_period="daily")
    key = created["key"]
    successes = 0
    with pytest.raises(openai.RateLimitError) as caught:
        for _ in range(10):
            chat(secured, key, max_tokens=5)
            successes += 1
    assert caught.value.body["code"] == "insufficient_quota"  # type: ignore[index]
    assert caught.value.body["type"] == "insufficient_quota"  # type: ignore[index]
    assert 1 <= successes <= 4
    with secured.admin(MASTER) as http:
        budget = http.get(f"/v1/admin/keys/{created['id']}").json()["budget"]
    assert budget["spend"] == pytest.approx(0.012 * successes)
    assert budget["spend"] <= budget["max_budget"]
    assert budget["reserved"] == 0


def test_team_budget_applies_to_every_key_of_the_team(secured: PortwayServer) -> None:
    with secured.admin(MASTER) as http:
        response = http.put("/v1/admin/budgets/team/blue", json={"max_budget": 0.0})
    assert response.status_code == 200
    key = secured.create_key(MASTER, team="blue")["key"]
    with pytest.raises(openai.RateLimitError) as caught:
        chat(secured, key)
    assert "team `blue`" in caught.value.body["message"]  # type: ignore[index]


def test_usage_is_recorded_and_scoped_to_the_key(secured: PortwayServer) -> None:
    mine = secured.create_key(MASTER, user="u-mine", team="t-mine")
    theirs = secured.create_key(MASTER, user="u-theirs")
    chat(secured, mine["key"])
    chat(secured, mine["key"], stream=True, stream_options={"include_usage": True})
    chat(secured, theirs["key"])

    own = httpx.get(
        f"{secured.base_url}/usage",
        params={"key": theirs["id"], "group_by": "key"},
        headers={"authorization": f"Bearer {mine['key']}"},
    ).json()
    assert [row["key"] for row in own["data"]] == [mine["id"]]
    assert own["data"][0]["requests"] == 2
    assert own["data"][0]["prompt_tokens"] == 14
    assert own["data"][0]["cost"] == pytest.approx(0.024)

    with secured.admin(MASTER) as http:
        everyone = http.get(
            "/v1/admin/usage", params={"group_by": "user,model", "team": "t-mine"}
        ).json()
        csv_text = http.get("/v1/admin/usage", params={"group_by": "key", "format": "csv"}).text
        bad = http.get("/v1/admin/usage", params={"group_by": "planet"})
    assert everyone["data"] == [
        {**everyone["data"][0], "user": "u-mine", "model": "fake-gpt", "requests": 2}
    ]
    assert csv_text.splitlines()[0].startswith("key,requests,prompt_tokens")
    assert mine["id"] in csv_text and theirs["id"] in csv_text
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"
