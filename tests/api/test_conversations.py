"""`/v1/conversations` and responses made in a conversation, through the official SDK."""

from __future__ import annotations

import openai
import pytest

from tests.assistants.support import MODEL, TEAM_B_KEY, sdk, start_gateway
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.responses.support import call


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_gateway(start_portway, fake_openai_server)


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return sdk(gateway)


def test_conversation_lifecycle_matches_the_spec(
    gateway: PortwayServer, client: openai.OpenAI
) -> None:
    conversation = client.conversations.create(
        metadata={"topic": "demo"},
        items=[{"type": "message", "role": "user", "content": "Hello!"}],
    )
    assert conversation.id.startswith("conv_")
    assert_matches(
        "ConversationResource", call(gateway, "GET", f"/conversations/{conversation.id}").json()
    )
    updated = client.conversations.update(conversation.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}
    assert client.conversations.retrieve(conversation.id).metadata == {"topic": "changed"}

    added = client.conversations.items.create(
        conversation.id,
        items=[
            {"type": "message", "role": "assistant", "content": "Hi!"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Bye"}]},
        ],
    )
    assert [item.type for item in added.data] == ["message", "message"]
    listing = call(gateway, "GET", f"/conversations/{conversation.id}/items?order=asc").json()
    assert_matches("ConversationItemList", listing)
    texts = [item["content"][0]["text"] for item in listing["data"]]
    assert texts == ["Hello!", "Hi!", "Bye"]

    page = client.conversations.items.list(conversation.id, limit=2)  # newest first
    assert [item.content[0].text for item in page.data] == ["Bye", "Hi!"]  # type: ignore[union-attr]
    assert page.has_more
    first_id = listing["data"][0]["id"]
    item = client.conversations.items.retrieve(first_id, conversation_id=conversation.id)
    assert item.id == first_id
    client.conversations.items.delete(first_id, conversation_id=conversation.id)
    response = call(gateway, "GET", f"/conversations/{conversation.id}/items/{first_id}")
    assert response.status_code == 404

    deleted = client.conversations.delete(conversation.id)
    assert deleted.deleted is True
    assert_matches(
        "DeletedConversationResource",
        {"id": conversation.id, "object": "conversation.deleted", "deleted": True},
    )
    assert call(gateway, "GET", f"/conversations/{conversation.id}").status_code == 404
    assert call(gateway, "GET", f"/conversations/{conversation.id}/items").status_code == 404


def test_responses_in_a_conversation_see_and_extend_it(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "My name is Ada."}]
    )
    fake_openai.script(Reply(content="Hello Ada."), Reply(content="Your name is Ada."))
    first = client.responses.create(
        model=MODEL, conversation=conversation.id, input="Greet me.", instructions="Be kind."
    )
    assert first.conversation is not None and first.conversation.id == conversation.id
    second = client.responses.create(
        model=MODEL, conversation={"id": conversation.id}, input="What is my name?"
    )
    assert second.output_text == "Your name is Ada."
    assert fake_openai.requests[-1].body["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "user", "content": "Greet me."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    items = client.conversations.items.list(conversation.id, order="asc")
    roles = [(item.type, getattr(item, "role", None)) for item in items.data]
    assert roles == [("message", "user")] + [("message", "user"), ("message", "assistant")] * 2


def test_store_false_leaves_the_conversation_alone(
    client: openai.OpenAI, gateway: PortwayServer
) -> None:
    conversation = client.conversations.create()
    client.responses.create(model=MODEL, conversation=conversation.id, input="x", store=False)
    assert client.conversations.items.list(conversation.id).data == []


def test_previous_response_id_and_conversation_are_exclusive(
    gateway: PortwayServer, client: openai.OpenAI
) -> None:
    conversation = client.conversations.create()
    earlier = client.responses.create(model=MODEL, input="x")
    response = call(
        gateway,
        "POST",
        "/responses",
        json={
            "model": MODEL,
            "input": "y",
            "conversation": conversation.id,
            "previous_response_id": earlier.id,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "conversation"


def test_another_tenant_cannot_see_or_use_a_conversation(
    gateway: PortwayServer, client: openai.OpenAI
) -> None:
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "private"}]
    )
    item_id = client.conversations.items.list(conversation.id).data[0].id
    for method, path in (
        ("GET", f"/conversations/{conversation.id}"),
        ("POST", f"/conversations/{conversation.id}"),
        ("DELETE", f"/conversations/{conversation.id}"),
        ("GET", f"/conversations/{conversation.id}/items"),
        ("GET", f"/conversations/{conversation.id}/items/{item_id}"),
        ("DELETE", f"/conversations/{conversation.id}/items/{item_id}"),
    ):
        kwargs = {"json": {"metadata": {}}} if method == "POST" else {}
        assert call(gateway, method, path, key=TEAM_B_KEY, **kwargs).status_code == 404, path
    used = call(
        gateway,
        "POST",
        "/responses",
        key=TEAM_B_KEY,
        json={"model": MODEL, "input": "x", "conversation": conversation.id},
    )
    assert used.status_code == 404
    assert client.conversations.retrieve(conversation.id).id == conversation.id


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param"),
    [
        ("POST", "/conversations", {"items": "nope"}, 400, "items"),
        ("POST", "/conversations", {"metadata": {"k": 1}}, 400, "metadata.k"),
        ("POST", "/conversations/conv_nope", {"metadata": {}}, 404, None),
        ("POST", "/conversations/{id}", {}, 400, "metadata"),
        ("POST", "/conversations/{id}/items", {"items": []}, 400, "items"),
        (
            "POST",
            "/conversations/{id}/items",
            {"items": [{"role": "user", "content": "x"}] * 21},
            400,
            "items",
        ),
        ("GET", "/conversations/{id}/items?limit=0", None, 400, "limit"),
        ("GET", "/conversations/{id}/items/msg_nope", None, 404, None),
    ],
)
def test_conversation_errors(
    gateway: PortwayServer,
    client: openai.OpenAI,
    method: str,
    path: str,
    body: dict | None,
    status: int,
    param: str | None,
) -> None:
    conversation = client.conversations.create()
    kwargs = {"json": body} if body is not None else {}
    response = call(gateway, method, path.replace("{id}", conversation.id), **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
