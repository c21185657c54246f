"""`GET /health/deployments`, active health checks, and the admission gate seam."""

from __future__ import annotations

import time

from portway.accounting.estimate import UsageEstimator
from portway.accounting.tokenizer import TokenizerService
from portway.config import AccountingConfig, ModelConfig
from portway.errors import RateLimitError
from portway.pipeline.base import CallContext
from portway.protocol.chat import ChatCompletionRequest
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.config import GroupRouteConfig
from portway.routing.router import Router
from portway.security.principal import ANONYMOUS
from tests.fakes.openai_upstream import Fail, Reply
from tests.routing.conftest import deployment


def test_health_report_shape(gateway_for, upstreams) -> None:
    upstreams[1].default = Fail(500)
    gateway = gateway_for(
        [deployment("chat", upstreams[0], priority=0), deployment("other", upstreams[1])],
        {"other": {"retries": 0}},
    )
    for _ in range(3):
        gateway.chat("chat")
    gateway.chat("other")
    report = gateway.http.get("/health/deployments").json()
    assert report["store"] == "memory"
    rows = {row["id"]: row for row in report["data"]}
    chat, other = rows["chat"], rows["other"]
    assert (chat["model"], chat["provider"], chat["state"]) == ("chat", "openai", "closed")
    assert (chat["requests"], chat["failures"], chat["in_flight"]) == (3, 0, 0)
    assert chat["latency_ms"] > 0 and chat["ttfb_ms"] > 0 and chat["error_rate"] == 0
    assert (other["failures"], other["error_rate"], other["consecutive_failures"]) == (1, 1.0, 1)
    assert "base_url" not in chat and "api_key" not in str(report)


def test_active_health_check_closes_a_recovered_circuit(gateway_for, upstreams) -> None:
    primary, secondary = upstreams[0], upstreams[1]
    primary.default = Fail(500)
    gateway = gateway_for(
        [deployment("chat", primary, priority=0), deployment("chat", secondary, priority=1)],
        {
            "chat": {
                "strategy": "priority",
                "retries": 1,
                "backoff": {"base": "5ms"},
                "breaker": {"consecutive_failures": 1, "cooldown": "200ms"},
                "health_check": {"interval": "50ms", "timeout": "1s"},
            }
        },
    )
    gateway.chat("chat")
    assert gateway.health()["chat"]["state"] in ("open", "half_open")
    primary.default = Reply(content="pong")
    deadline = time.monotonic() + 5
    while gateway.health()["chat"]["state"] != "closed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gateway.health()["chat"]["state"] == "closed"
    pings = [r.body for r in primary.requests if r.body.get("max_tokens") == 1]
    assert pings and pings[-1]["messages"] == [{"role": "user", "content": "ping"}]


class RecordingGate:
    """A stand-in for ``portway.limits.gate.DeploymentGate``: refuses one deployment."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.acquired: list[tuple[str, int, int]] = []
        self.released: list[tuple[str, int, int]] = []

    def limited(self, deployment_id: str) -> bool:
        return True

    def counts_tokens(self, deployment_id: str) -> bool:
        return True

    async def acquire(self, deployment_id: str, est_tokens: int, priority: int = 0) -> None:
        if deployment_id == self.refuse:
            raise RateLimitError("deployment saturated", retry_after=3)
        self.acquired.append((deployment_id, est_tokens, priority))

    async def release(self, deployment_id: str, est_tokens: int, actual_tokens: int) -> None:
        self.released.append((deployment_id, est_tokens, actual_tokens))


async def test_gate_is_asked_before_each_attempt(upstreams) -> None:
    configs = [
        ModelConfig.model_validate(deployment("chat", upstreams[0], priority=0)),
        ModelConfig.model_validate(deployment("chat", upstreams[1], priority=1)),
    ]
    catalog = ModelCatalog.from_configs(configs, ProviderRegistry())
    gate = RecordingGate(refuse="chat")
    router = Router(catalog, {"chat": GroupRouteConfig(strategy="priority")}, gate=gate)
    estimator = UsageEstimator(TokenizerService(), catalog, AccountingConfig(), router)
    request = ChatCompletionRequest.model_validate(
        {"model": "chat", "messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}
    )
    ctx = CallContext(
        request_id="r",
        principal=ANONYMOUS,
        request=request,
        priority=3,
        count_prompt=estimator.count_prompt,
    )
    prompt = await estimator.count_prompt(ctx)
    await catalog.start()
    try:
        completion = await router.complete(ctx, None)  # type: ignore[arg-type]
    finally:
        await catalog.close()
    assert completion["model"] == "chat"
    assert ctx.response_headers["x-portway-deployment"] == "chat#1"
    assert ctx.response_headers["x-portway-attempts"] == "1"  # the refusal was not an attempt
    assert upstreams[0].requests == []
    assert prompt > 0
    assert gate.acquired == [("chat#1", prompt, 3)]  # the pipeline's one prompt count
    assert gate.released == [("chat#1", prompt, 12)]  # trued up to the upstream's usage


async def test_gate_refusing_everything_returns_its_error(upstreams) -> None:
    configs = [ModelConfig.model_validate(deployment("chat", upstreams[0]))]
    catalog = ModelCatalog.from_configs(configs, ProviderRegistry())
    router = Router(catalog, gate=RecordingGate(refuse="chat"))
    estimator = UsageEstimator(TokenizerService(), catalog, AccountingConfig(), router)
    request = ChatCompletionRequest.model_validate(
        {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    )
    ctx = CallContext(
        request_id="r", principal=ANONYMOUS, request=request, count_prompt=estimator.count_prompt
    )
    try:
        await router.complete(ctx, None)  # type: ignore[arg-type]
    except RateLimitError as error:
        assert error.headers["retry-after"] == "3"
        assert error.headers["x-portway-attempts"] == "0"
    else:
        raise AssertionError("expected the gate's RateLimitError")
    assert upstreams[0].requests == []


def test_a_saturated_deployment_is_passed_over_not_queued_for(gateway_for, upstreams) -> None:
    limited, spare = upstreams[0], upstreams[1]
    gateway = gateway_for(
        [deployment("chat", limited, priority=0, rpm=1), deployment("chat", spare, priority=1)],
        {"chat": {"strategy": "priority"}},
        limits={"queue_max_wait_seconds": 20},
    )
    assert gateway.chat("chat").headers["x-portway-deployment"] == "chat"
    started = time.monotonic()
    response = gateway.chat("chat")  # the primary's one request per minute is spent
    assert response.headers["x-portway-deployment"] == "chat#1"
    assert response.headers["x-portway-attempts"] == "1"
    assert time.monotonic() - started < 10  # not the 20 s queue wait
    assert len(limited.requests) == 1


def test_the_last_candidate_waits_in_the_gate_queue(gateway_for, upstreams) -> None:
    gateway = gateway_for(
        [deployment("chat", upstreams[0], rpm=1)], limits={"queue_max_wait_seconds": 0.3}
    )
    assert gateway.chat("chat").status_code == 200
    response = gateway.chat("chat")
    assert response.status_code == 429
    assert "stayed at its rate limit" in response.json()["error"]["message"]
    assert response.headers["x-portway-attempts"] == "0"
    assert len(upstreams[0].requests) == 1
