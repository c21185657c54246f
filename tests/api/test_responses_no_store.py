"""Zero-retention (``no_store``) keys: responses work but are never stored; conversations
(which only exist stored) are refused."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-master-responses-no-store"


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {"master_key": MASTER, "models": [fake_model("fake-gpt", fake_openai_server.base_url)]}
    )


@pytest.fixture(scope="module")
def zero_retention(server: PortwayServer) -> openai.OpenAI:
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {MASTER}"}) as http:
        response = http.post("/v1/admin/keys", json={"name": "zdr", "no_store": True})
    assert response.status_code == 201, response.text
    return openai.OpenAI(base_url=server.base_url, api_key=response.json()["key"], max_retries=0)


def test_responses_of_a_zero_retention_key_are_not_stored(
    zero_retention: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    response = zero_retention.responses.create(model="fake-gpt", input="secret")
    assert response.status == "completed" and response.store is False
    with pytest.raises(openai.NotFoundError):
        zero_retention.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError):
        zero_retention.responses.create(model="fake-gpt", input="later", background=True)


def test_conversations_refuse_a_zero_retention_key(zero_retention: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        zero_retention.conversations.create()
    assert refused.value.status_code == 400
    assert refused.value.body["code"] == "zero_retention"  # type: ignore[index]
