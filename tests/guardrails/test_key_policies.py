"""A virtual key's own guardrails (its ``metadata.guardrails``) replace the config's."""

from __future__ import annotations

import json

import openai
import pytest

from tests.batches.support import issue_key
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-master-guardrails"
EMAIL = "alice@example.org"


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {"master_key": MASTER, "models": [fake_model("fake-gpt", fake_openai_server.base_url)]}
    )


def client_with(server: PortwayServer, metadata: dict[str, object]) -> openai.OpenAI:
    _, key = issue_key(server.url, MASTER, metadata=metadata)
    return server.sdk(key)


def ask(client: openai.OpenAI, content: str) -> str | None:
    completion = client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": content}]
    )
    return completion.choices[0].message.content


def test_a_keys_own_guardrails_apply_to_its_calls_only(
    server: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    guarded = client_with(server, {"guardrails": [{"name": "pii", "mode": "redact"}]})
    assert ask(guarded, f"mail {EMAIL}") == f"echo: mail {EMAIL}"
    assert fake_openai.requests[-1].body["messages"][-1]["content"] == "mail <EMAIL_1>"
    plain = client_with(server, {"team_note": "no guardrails"})
    assert ask(plain, f"mail {EMAIL}") == f"echo: mail {EMAIL}"
    assert EMAIL in json.dumps(fake_openai.requests[-1].body)


@pytest.mark.parametrize(
    "guardrails", [[{"name": "nope"}], [{"name": "pii", "mode": "shout"}], "pii"]
)
def test_a_broken_key_list_is_a_clear_400(
    server: PortwayServer, fake_openai: FakeOpenAI, guardrails: object
) -> None:
    broken = client_with(server, {"guardrails": guardrails})
    with pytest.raises(openai.BadRequestError) as caught:
        ask(broken, "hello")
    assert caught.value.param == "metadata.guardrails"
    assert "metadata" in caught.value.message
    assert fake_openai.requests == []
