"""`GET /metrics`: Prometheus text fed by the same per-request records as the ledger."""

from __future__ import annotations

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_upstream import Fail, FakeOpenAI
from tests.fakes.server import PortwayServer


def scrape(server: PortwayServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_requests_tokens_and_gauges(
    start_portway, fake_openai: FakeOpenAI, fake_openai_server: FakeOpenAI
) -> None:
    from tests.conftest import fake_model

    server = start_portway(
        {
            "models": [
                fake_model(
                    "metered", fake_openai_server.base_url, pricing={"input": 1.0, "output": 2.0}
                )
            ],
            "router": {"*": {"retries": 0}},
        }
    )
    client = server.sdk()
    for _ in range(3):
        client.chat.completions.create(model="metered", messages=[{"role": "user", "content": "x"}])
    fake_openai.script(Fail(status=500))
    try:
        client.chat.completions.create(model="metered", messages=[{"role": "user", "content": "y"}])
    except openai.APIStatusError as error:
        assert error.status_code == 502
    samples = scrape(server)
    ok = ("portway_requests_total", (("cache", "none"), ("model", "metered"), ("status", "200")))
    failed = (
        "portway_requests_total",
        (("cache", "none"), ("model", "metered"), ("status", "502")),
    )
    assert samples[ok] == 3 and samples[failed] == 1
    prompt = ("portway_tokens_total", (("kind", "prompt"), ("model", "metered")))
    assert samples[prompt] == 3 * 7  # the fake reports 7 prompt tokens per call
    cost = samples[("portway_cost_usd_total", (("model", "metered"),))]
    assert abs(cost - 3 * (7 * 1.0 + 5 * 2.0) / 1e6) < 1e-12
    count = ("portway_request_duration_seconds_count", (("model", "metered"),))
    assert samples[count] == 4
    closed = ("portway_deployment_breaker_state", (("deployment", "metered"), ("state", "closed")))
    assert samples[closed] == 1


def test_unknown_model_names_do_not_become_label_values(
    start_portway, fake_openai: FakeOpenAI, fake_openai_server: FakeOpenAI
) -> None:
    from tests.conftest import fake_model

    server = start_portway({"models": [fake_model("known", fake_openai_server.base_url)]})
    client = server.sdk()
    invented = [f"invented-model-{i}" for i in range(5)]
    for name in invented:
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}])
    client.chat.completions.create(model="known", messages=[{"role": "user", "content": "x"}])
    text = httpx.get(f"{server.url}/metrics").text
    assert not [name for name in invented if name in text]
    samples = scrape(server)
    unknown = (
        "portway_requests_total",
        (("cache", "none"), ("model", "unknown"), ("status", "404")),
    )
    assert samples[unknown] == len(invented)
    known = ("portway_requests_total", (("cache", "none"), ("model", "known"), ("status", "200")))
    assert samples[known] == 1
