"""``cache_salt: true`` on an OpenAI-compatible deployment (vLLM's field): each tenant's
prompts reach the upstream with a salt of their own, so its prefix cache is not shared.

Through HTTP with the OpenAI SDK: a real Portway with two keys in front of the fake
upstream, which records the bodies it receives.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MASTER = "sk-master-cache-salt"


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server: FakeOpenAI) -> PortwayServer:
    url = fake_openai_server.base_url
    return start_portway(
        {
            "master_key": MASTER,
            "models": [fake_model("salted", url, cache_salt=True), fake_model("plain", url)],
        }
    )


def salt_sent(
    gateway: PortwayServer, upstream: FakeOpenAI, key: str, model: str, **extra: Any
) -> Any:
    gateway.sdk(key).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hello"}],
        extra_body=extra or None,
    )
    return upstream.last_body.get("cache_salt")


def test_each_tenant_gets_a_salt_of_its_own(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    alice = gateway.create_key(MASTER, name="alice")
    bob = gateway.create_key(MASTER, name="bob")
    first = salt_sent(gateway, fake_openai, alice["key"], "salted")
    assert isinstance(first, str) and re.fullmatch(r"[0-9a-f]{32}", first)
    assert salt_sent(gateway, fake_openai, alice["key"], "salted") == first
    assert salt_sent(gateway, fake_openai, bob["key"], "salted") not in (first, None)
    # A digest: the key's id never reaches the upstream.
    assert alice["id"] not in str(fake_openai.last_body)


def test_a_clients_salt_splits_its_tenants_cache_and_cannot_reach_anothers(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    alice = gateway.create_key(MASTER, name="alice")["key"]
    bob = gateway.create_key(MASTER, name="bob")["key"]
    own = salt_sent(gateway, fake_openai, alice, "salted")
    split = salt_sent(gateway, fake_openai, alice, "salted", cache_salt="project-x")
    assert split != own
    # Bob sending the very same salt still lands in a namespace of his own.
    assert salt_sent(gateway, fake_openai, bob, "salted", cache_salt="project-x") != split


def test_without_the_option_no_salt_is_added(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = gateway.create_key(MASTER, name="dave")["key"]
    assert salt_sent(gateway, fake_openai, key, "plain") is None
