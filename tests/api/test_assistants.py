"""Assistants, threads and messages through the official SDK: shapes, pagination, tenancy."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.assistants.support import (
    MODEL,
    TEAM_A_KEY,
    TEAM_B_KEY,
    WEATHER_TOOL,
    sdk,
    start_gateway,
)
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server) -> PortwayServer:
    return start_gateway(start_portway, fake_openai_server)


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return sdk(gateway)


def raw(gateway: PortwayServer, method: str, path: str, key: str = TEAM_A_KEY, **kwargs):
    return httpx.request(
        method,
        f"{gateway.base_url}{path}",
        headers={"authorization": f"Bearer {key}", "openai-beta": "assistants=v2"},
        **kwargs,
    )


def test_assistant_lifecycle_matches_the_spec(
    gateway: PortwayServer, client: openai.OpenAI
) -> None:
    created = raw(
        gateway,
        "POST",
        "/assistants",
        json={
            "model": MODEL,
            "name": "Weather bot",
            "instructions": "Answer about weather.",
            "tools": [WEATHER_TOOL, {"type": "code_interpreter"}],
            "metadata": {"team": "ops"},
            "temperature": 0.5,
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert_matches("AssistantObject", body)
    assert body["id"].startswith("asst_")
    assert body["tools"][0]["function"]["name"] == "get_weather"

    fetched = client.beta.assistants.retrieve(body["id"])
    assert fetched.name == "Weather bot" and fetched.metadata == {"team": "ops"}

    modified = raw(
        gateway,
        "POST",
        f"/assistants/{body['id']}",
        json={"name": "Renamed", "metadata": {"team": "dev"}, "tools": []},
    )
    assert_matches("AssistantObject", modified.json())
    assert modified.json()["name"] == "Renamed"
    assert modified.json()["tools"] == []
    assert modified.json()["instructions"] == "Answer about weather."

    deleted = raw(gateway, "DELETE", f"/assistants/{body['id']}")
    assert_matches("DeleteAssistantResponse", deleted.json())
    assert deleted.json() == {"id": body["id"], "object": "assistant.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(body["id"])


def test_unknown_model_is_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.assistants.create(model="no-such-model")
    assert caught.value.body["code"] == "model_not_found"


def test_invalid_input_is_a_400_naming_the_param(gateway: PortwayServer) -> None:
    too_much_metadata = {f"k{i}": "v" for i in range(17)}
    response = raw(
        gateway, "POST", "/assistants", json={"model": MODEL, "metadata": too_much_metadata}
    )
    assert response.status_code == 400
    assert_matches("ErrorResponse", response.json())
    assert response.json()["error"]["param"] == "metadata"

    response = raw(gateway, "POST", "/assistants", json={"model": MODEL, "tools": [{"type": "x"}]})
    assert response.status_code == 400

    for query in ("limit=0", "limit=101", "limit=ten", "order=sideways"):
        response = raw(gateway, "GET", f"/assistants?{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]["param"] in ("limit", "order")


def test_thread_with_messages(gateway: PortwayServer, client: openai.OpenAI) -> None:
    created = raw(
        gateway,
        "POST",
        "/threads",
        json={
            "messages": [
                {"role": "user", "content": "First", "metadata": {"n": "1"}},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Second"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                },
            ],
            "metadata": {"topic": "test"},
        },
    )
    thread = created.json()
    assert_matches("ThreadObject", thread)
    listed = raw(gateway, "GET", f"/threads/{thread['id']}/messages?order=asc").json()
    assert_matches("ListMessagesResponse", listed)
    assert [m["content"][0]["text"]["value"] for m in listed["data"]] == ["First", "Second"]
    assert listed["data"][1]["content"][1]["type"] == "image_url"
    first = listed["data"][0]
    assert first["metadata"] == {"n": "1"} and first["thread_id"] == thread["id"]

    message = client.beta.threads.messages.create(thread["id"], role="user", content="Third")
    assert_matches(
        "MessageObject",
        raw(gateway, "GET", f"/threads/{thread['id']}/messages/{message.id}").json(),
    )
    updated = client.beta.threads.messages.update(
        message.id, thread_id=thread["id"], metadata={"seen": "yes"}
    )
    assert updated.metadata == {"seen": "yes"}

    deleted = raw(gateway, "DELETE", f"/threads/{thread['id']}/messages/{message.id}")
    assert_matches("DeleteMessageResponse", deleted.json())

    modified = client.beta.threads.update(thread["id"], metadata={"topic": "changed"})
    assert modified.metadata == {"topic": "changed"}
    deleted = raw(gateway, "DELETE", f"/threads/{thread['id']}")
    assert_matches("DeleteThreadResponse", deleted.json())
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread["id"])


def test_empty_thread_body_is_accepted(gateway: PortwayServer) -> None:
    response = raw(gateway, "POST", "/threads")
    assert response.status_code == 200
    assert_matches("ThreadObject", response.json())


def test_cursor_pagination(gateway: PortwayServer, client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    ids = [
        client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}").id
        for i in range(5)
    ]
    path = f"/threads/{thread.id}/messages"
    newest_first = raw(gateway, "GET", f"{path}?limit=2").json()
    assert [m["id"] for m in newest_first["data"]] == [ids[4], ids[3]]
    assert newest_first["has_more"] is True
    assert (newest_first["first_id"], newest_first["last_id"]) == (ids[4], ids[3])

    after = raw(gateway, "GET", f"{path}?limit=2&after={ids[3]}").json()
    assert [m["id"] for m in after["data"]] == [ids[2], ids[1]] and after["has_more"] is True
    last = raw(gateway, "GET", f"{path}?limit=2&after={ids[1]}").json()
    assert [m["id"] for m in last["data"]] == [ids[0]] and last["has_more"] is False

    before = raw(gateway, "GET", f"{path}?limit=2&before={ids[1]}").json()
    assert [m["id"] for m in before["data"]] == [ids[3], ids[2]] and before["has_more"] is True

    oldest_first = raw(gateway, "GET", f"{path}?order=asc&limit=3&after={ids[0]}").json()
    assert [m["id"] for m in oldest_first["data"]] == ids[1:4]
    asc_before = raw(gateway, "GET", f"{path}?order=asc&before={ids[2]}").json()
    assert [m["id"] for m in asc_before["data"]] == ids[:2]

    # The SDK's auto-pagination walks every page through `after`.
    walked = [m.id for m in client.beta.threads.messages.list(thread.id, limit=2, order="asc")]
    assert walked == ids


def test_assistants_list_pages(gateway: PortwayServer) -> None:
    made = [
        raw(gateway, "POST", "/assistants", key=TEAM_B_KEY, json={"model": MODEL}).json()["id"]
        for _ in range(3)
    ]
    page = raw(gateway, "GET", "/assistants?limit=2", key=TEAM_B_KEY).json()
    assert_matches("ListAssistantsResponse", page)
    assert [a["id"] for a in page["data"]] == made[::-1][:2]


def test_tenants_see_only_their_own_objects(gateway: PortwayServer) -> None:
    team_a, team_b = sdk(gateway, TEAM_A_KEY), sdk(gateway, TEAM_B_KEY)
    assistant = team_a.beta.assistants.create(model=MODEL, name="A's")
    thread = team_a.beta.threads.create(messages=[{"role": "user", "content": "secret"}])
    message = team_a.beta.threads.messages.list(thread.id).data[0]

    for attempt in (
        lambda: team_b.beta.assistants.retrieve(assistant.id),
        lambda: team_b.beta.assistants.update(assistant.id, name="mine now"),
        lambda: team_b.beta.assistants.delete(assistant.id),
        lambda: team_b.beta.threads.retrieve(thread.id),
        lambda: team_b.beta.threads.update(thread.id, metadata={"x": "y"}),
        lambda: team_b.beta.threads.delete(thread.id),
        lambda: team_b.beta.threads.messages.list(thread.id),
        lambda: team_b.beta.threads.messages.retrieve(message.id, thread_id=thread.id),
        lambda: team_b.beta.threads.messages.create(thread.id, role="user", content="hi"),
        lambda: team_b.beta.threads.runs.list(thread.id),
        lambda: team_b.beta.threads.runs.create(thread.id, assistant_id=assistant.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()

    # B's own thread cannot use A's assistant either.
    b_thread = team_b.beta.threads.create()
    with pytest.raises(openai.NotFoundError) as caught:
        team_b.beta.threads.runs.create(b_thread.id, assistant_id=assistant.id)
    assert caught.value.body["param"] == "assistant_id"

    assert assistant.id not in {a.id for a in team_b.beta.assistants.list()}
    assert assistant.id in {a.id for a in team_a.beta.assistants.list()}
    assert team_a.beta.assistants.retrieve(assistant.id).name == "A's"


def test_unknown_key_is_refused(gateway: PortwayServer) -> None:
    assert raw(gateway, "GET", "/assistants", key="sk-nobody").status_code == 401


def test_modifying_an_assistant_writes_only_the_fields_the_api_declares(
    gateway: PortwayServer,
) -> None:
    """Extra body fields named like stored columns (tenant, id) are not written through."""
    made = raw(gateway, "POST", "/assistants", json={"model": MODEL, "name": "A's"}).json()
    changed = raw(
        gateway,
        "POST",
        f"/assistants/{made['id']}",
        json={"name": "renamed", "tenant": "team-b", "id": "asst_stolen", "created_at": 1},
    )
    assert changed.status_code == 200
    assert changed.json()["id"] == made["id"] and changed.json()["name"] == "renamed"
    assert changed.json()["created_at"] == made["created_at"]
    assert raw(gateway, "GET", f"/assistants/{made['id']}").json()["name"] == "renamed"
    assert raw(gateway, "GET", f"/assistants/{made['id']}", key=TEAM_B_KEY).status_code == 404
