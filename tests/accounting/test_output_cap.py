"""The output cap a budget hold assumes is the cap the upstream gets (no overspend)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.server import PortwayServer

MASTER = "sk-master-cap"
# $0.001 per output token, prompts free: the worst case is the output cap alone.
PRICING = {"input": 0.0, "output": 1000.0}
DEFAULT_CAP = 4096
DEPLOYMENT_CAP = 100


@pytest.fixture(scope="module")
def gateway(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    base_url = fake_openai_server.base_url
    return start_portway(
        {
            "master_key": MASTER,
            "accounting": {"default_max_output_tokens": DEFAULT_CAP},
            "models": [
                fake_model("uncapped", base_url, pricing=PRICING),
                fake_model("capped", base_url, pricing=PRICING, max_output_tokens=DEPLOYMENT_CAP),
            ],
        }
    )


def _key(gateway: PortwayServer, **fields: Any) -> dict[str, Any]:
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {MASTER}"}) as http:
        response = http.post("/v1/admin/keys", json=fields)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _budget(gateway: PortwayServer, key_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {MASTER}"}) as http:
        response = http.get(f"/v1/admin/keys/{key_id}")
    assert response.status_code == 200, response.text
    return response.json()["budget"]  # type: ignore[no-any-return]


def _sdk(gateway: PortwayServer, key: str) -> openai.OpenAI:
    return gateway.sdk(key)


@pytest.mark.parametrize(("model", "cap"), [("uncapped", DEFAULT_CAP), ("capped", DEPLOYMENT_CAP)])
@pytest.mark.parametrize("stream", [False, True])
def test_without_a_client_cap_the_upstream_gets_the_cap_the_hold_assumed(
    gateway: PortwayServer, fake_openai: FakeOpenAI, model: str, cap: int, stream: bool
) -> None:
    key = _key(gateway)
    client = _sdk(gateway, key["key"])
    messages: Any = [{"role": "user", "content": "write forever"}]
    if stream:
        for _ in client.chat.completions.create(model=model, messages=messages, stream=True):
            pass
    else:
        client.chat.completions.create(model=model, messages=messages)
    body = fake_openai.requests[-1].body
    assert body["max_completion_tokens"] == cap
    assert "max_tokens" not in body


def test_a_client_cap_is_forwarded_unchanged(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = _key(gateway)
    _sdk(gateway, key["key"]).chat.completions.create(
        model="uncapped", messages=[{"role": "user", "content": "hi"}], max_tokens=7
    )
    body = fake_openai.requests[-1].body
    assert body["max_tokens"] == 7
    assert "max_completion_tokens" not in body


def test_a_request_whose_worst_case_fits_never_overspends_the_budget(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    # Budget $5; the worst case (4096 output tokens at $0.001) is $4.096, so the call is
    # admitted. The upstream would write 10,000 tokens ($10) if nothing capped it.
    key = _key(gateway, max_budget=5.0, budget_period="total")
    fake_openai.default = Reply(content="a very long answer", completion_tokens=10_000)
    completion = _sdk(gateway, key["key"]).chat.completions.create(
        model="uncapped", messages=[{"role": "user", "content": "write forever"}]
    )
    assert completion.usage is not None
    assert completion.usage.completion_tokens == DEFAULT_CAP
    assert completion.choices[0].finish_reason == "length"
    budget = _budget(gateway, key["id"])
    assert budget["spend"] == pytest.approx(DEFAULT_CAP * 0.001)
    assert budget["spend"] <= budget["max_budget"]
    assert budget["reserved"] == 0


@pytest.fixture(scope="module")
def local(start_portway: PortwayFactory) -> openai.OpenAI:
    server = start_portway(
        {
            "models": [
                {"name": "tiny-capped", "provider": "local", "max_output_tokens": 5},
                # A default cap (4096) larger than the whole window: fitted, never a 400.
                {"name": "tiny", "provider": "local", "options": {"n_ctx": 512}},
            ]
        }
    )
    return server.sdk()


@pytest.mark.slow
def test_the_local_model_obeys_the_cap_its_hold_assumed(local: openai.OpenAI) -> None:
    completion = local.chat.completions.create(
        model="tiny-capped",
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        temperature=0,
    )
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 5
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.slow
def test_a_default_cap_larger_than_the_window_is_fitted_to_it(local: openai.OpenAI) -> None:
    completion = local.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Say hi."}], temperature=0
    )
    assert completion.usage is not None
    assert 0 < completion.usage.prompt_tokens + completion.usage.completion_tokens <= 512
