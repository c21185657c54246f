"""The audit log over HTTP: admin actions and model-call metadata are recorded (never
content), `GET /v1/admin/audit` pages through them for the master key only."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-master-audit-api"
EMAIL = "jane.doe.audit@example.com"


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "audit": {"requests": True, "flush_interval_ms": 20},
            "guardrails": [{"name": "pii", "mode": "redact"}],
            "models": [fake_model("fake-gpt", fake_openai_server.base_url)],
        }
    )


def records(http: httpx.Client, **params: object) -> list[dict[str, object]]:
    response = http.get("/v1/admin/audit", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def test_admin_actions_are_recorded_in_order(server: PortwayServer) -> None:
    key = server.create_key(MASTER, name="audited", team="t1", max_budget=5)
    with server.admin(MASTER) as http:
        assert http.patch(f"/v1/admin/keys/{key['id']}", json={"rpm": 10}).status_code == 200
        assert http.post(f"/v1/admin/keys/{key['id']}/rotate").status_code == 200
        assert http.put("/v1/admin/budgets/team/t1", json={"max_budget": 9}).status_code == 200
        assert http.delete("/v1/admin/budgets/team/t1").status_code == 200
        assert http.delete(f"/v1/admin/keys/{key['id']}").status_code == 200
        mine = [r for r in records(http, kind="admin") if key["id"] in str(r["subject"])]
        budget = [r["action"] for r in records(http, kind="admin") if r["subject"] == "team:t1"]
        verified = http.get("/v1/admin/audit/verify").json()
    assert [r["action"] for r in mine] == ["key.create", "key.update", "key.rotate", "key.revoke"]
    assert all(r["actor"] == "master" for r in mine)
    assert mine[1]["details"]["fields"] == ["rpm"]  # type: ignore[index]
    assert budget == ["budget.set", "budget.delete"]
    assert key["key"] not in json.dumps(mine)  # never the secret
    assert verified["ok"] is True and verified["records"] >= 6


def test_model_calls_are_recorded_without_content(
    server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = server.create_key(MASTER, name="caller", user="u1")
    reply = server.sdk(key["key"]).chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": f"mail {EMAIL} please"}]
    )
    assert EMAIL in (reply.choices[0].message.content or "")  # restored in the answer
    with server.admin(MASTER) as http:
        http.get("/v1/admin/audit/verify")  # flushes queued request records
        calls = [r for r in records(http, kind="request") if r["actor"] == f"key:{key['id']}"]
    assert len(calls) == 1
    details = calls[0]["details"]
    assert details["model"] == "fake-gpt" and details["user"] == "u1"  # type: ignore[index]
    assert details["status"] == 200 and details["endpoint"] == "chat.completions"  # type: ignore[index]
    assert details["guardrails"] == ["pii:redacted"]  # type: ignore[index]
    assert EMAIL not in json.dumps(calls)


def test_pages_and_permissions(server: PortwayServer) -> None:
    for i in range(4):  # at least 4 records, whatever ran before
        server.create_key(MASTER, name=f"page-{i}")
    with server.admin(MASTER) as http:
        first = http.get("/v1/admin/audit", params={"limit": 2}).json()
        second = http.get("/v1/admin/audit", params={"limit": 2, "after": first["last_id"]})
        newest = http.get("/v1/admin/audit", params={"limit": 1, "order": "desc"}).json()
        bad = http.get("/v1/admin/audit", params={"after": "x"})
    assert [r["seq"] for r in first["data"]] == [1, 2] and first["has_more"] is True
    assert [r["seq"] for r in second.json()["data"]] == [3, 4]
    assert newest["data"][0]["action"] == "key.create"
    assert newest["data"][0]["details"]["name"] == "page-3"
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "after"
    key = server.create_key(MASTER, name="not-admin")
    with httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {key['key']}"}
    ) as http:
        refused = http.get("/v1/admin/audit")
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "invalid_request_error"
