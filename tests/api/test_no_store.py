"""Zero-retention keys (``no_store``, the older spelling of ``retention: none``): the
stateful APIs, which store content, refuse them with 400 ``zero_retention``."""

from __future__ import annotations

import io
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MASTER = "sk-master-no-store-api"


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {"master_key": MASTER, "models": [fake_model("fake-gpt", fake_openai_server.base_url)]}
    )


def _client(server: PortwayServer, **fields: Any) -> openai.OpenAI:
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {MASTER}"}) as http:
        response = http.post("/v1/admin/keys", json={"name": "k", **fields})
    assert response.status_code == 201, response.text
    return server.sdk(response.json()["key"])


def _refused(error: openai.BadRequestError) -> None:
    assert error.status_code == 400
    body: Any = error.body
    assert body["code"] == "zero_retention"
    assert body["type"] == "invalid_request_error"
    assert "zero retention" in body["message"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.files.create(file=("a.txt", io.BytesIO(b"secret notes")), purpose="assistants"),
        lambda c: c.files.list(),
        lambda c: c.vector_stores.create(name="kb"),
        lambda c: c.beta.assistants.create(model="fake-gpt", name="helper"),
        lambda c: c.beta.threads.create(messages=[{"role": "user", "content": "remember me"}]),
    ],
    ids=["file upload", "file list", "vector store", "assistant", "thread"],
)
def test_stateful_apis_refuse_a_no_store_key(server: PortwayServer, call: Any) -> None:
    client = _client(server, no_store=True)
    with pytest.raises(openai.BadRequestError) as caught:
        call(client)
    _refused(caught.value)


def test_a_no_store_key_still_chats(server: PortwayServer, fake_openai: FakeOpenAI) -> None:
    client = _client(server, no_store=True)
    completion = client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "echo: hi"


def test_an_ordinary_key_keeps_its_threads(server: PortwayServer) -> None:
    client = _client(server)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "remember me"}])
    assert client.beta.threads.retrieve(thread.id).id == thread.id
