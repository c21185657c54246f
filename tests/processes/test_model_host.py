"""The model host over real HTTP: OpenAI's routes for its hosted providers, its token, the
continuation a resumed stream asks for; and the worker settings that point at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from portway.config import ModelConfig, Settings
from portway.processes.hosted import worker_settings
from portway.processes.model_host import HEALTH_PATH, ModelHost, hosted_indexes
from portway.protocol.chat import (
    AssistantMessage,
    ChatCompletionChunkDict,
    ChatCompletionDict,
    ChatCompletionRequest,
    message_text,
)
from portway.providers.base import Capabilities, Continuation, Provider
from portway.providers.registry import ProviderRegistry
from tests.fakes.server import PortwayServer

TOKEN = "host-token-for-tests"
PARTIAL = "The quick brown"
REST = " fox jumps."


class ScriptedModel(Provider):
    """An in-process model: answers by echoing the prompt; continues a partial answer by
    repeating its last word (like a provider that trims the prefix) and then ``REST``."""

    name = "scripted-hosted"
    billed = False
    hosted = True
    started = False

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.scopes: list[str] = []  # each chat's prefix-cache namespace

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(context_window=2048, max_output_tokens=64, prefill=True)

    async def start(self) -> None:
        self.started = True

    def continuation(self, request: ChatCompletionRequest, partial: str) -> Continuation:
        continued = super().continuation(request, partial)
        return Continuation(continued.request, echo=partial.rsplit(" ", 1)[-1])

    def _answer(self, request: ChatCompletionRequest) -> str:
        last = request.messages[-1]
        if isinstance(last, AssistantMessage):  # continuing: the echo, then the rest
            return message_text(last.content).rsplit(" ", 1)[-1] + REST
        return "echo: " + message_text(last.content)

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionDict:
        self.scopes.append(request.cache_scope)
        return {  # type: ignore[typeddict-item]
            "id": "chatcmpl-host",
            "object": "chat.completion",
            "created": 0,
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self._answer(request)},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        }

    async def stream(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunkDict]:
        text = self._answer(request)
        pieces = [{"role": "assistant", "content": ""}]
        pieces += [{"content": text[i : i + 3]} for i in range(0, len(text), 3)]
        for delta in pieces:
            yield {  # type: ignore[misc]
                "id": "chatcmpl-host",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": request.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
        yield {  # type: ignore[misc]
            "id": "chatcmpl-host",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": request.model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }


MODEL = ScriptedModel(ModelConfig(name="tiny", provider="scripted-hosted"))


@pytest.fixture(scope="module")
def host() -> Iterator[PortwayServer]:
    server = PortwayServer(ModelHost({"models-0": MODEL}, TOKEN).app())
    server.start()
    yield server
    server.stop()


def _sdk(host: PortwayServer, token: str = TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=host.base_url, api_key=token, max_retries=0)


def test_the_host_reports_its_models_once_loaded(host: PortwayServer) -> None:
    report = httpx.get(host.url + HEALTH_PATH, headers={"authorization": f"Bearer {TOKEN}"})
    assert report.status_code == 200
    abilities = report.json()["models-0"]
    assert abilities["context_window"] == 2048
    assert abilities["prefill"] is True


def test_without_its_token_nothing_is_served(host: PortwayServer) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        _sdk(host, "wrong").chat.completions.create(
            model="models-0", messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.status_code == 401
    assert httpx.get(host.url + HEALTH_PATH).status_code == 401


def test_chat_whole_and_streamed(host: PortwayServer) -> None:
    client = _sdk(host)
    whole = client.chat.completions.create(
        model="models-0", messages=[{"role": "user", "content": "ping"}]
    )
    assert whole.choices[0].message.content == "echo: ping"
    chunks = client.chat.completions.create(
        model="models-0", messages=[{"role": "user", "content": "pong"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: pong"


def test_an_unknown_model_is_a_404(host: PortwayServer) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        _sdk(host).chat.completions.create(
            model="models-9", messages=[{"role": "user", "content": "hi"}]
        )
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]


def _continue(client: openai.OpenAI, *, stream: bool) -> Any:
    return client.chat.completions.create(
        model="models-0",
        messages=[
            {"role": "user", "content": "Tell me about the fox."},
            {"role": "assistant", "content": PARTIAL},
        ],
        stream=stream,
        extra_body={"continue_final_message": True, "add_generation_prompt": False},
    )


def test_a_continued_answer_does_not_repeat_what_the_client_has(host: PortwayServer) -> None:
    client = _sdk(host)
    chunks = list(_continue(client, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert PARTIAL + text == PARTIAL + REST
    assert _continue(client, stream=False).choices[0].message.content == REST


def test_continuing_needs_a_final_assistant_message(host: PortwayServer) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _sdk(host).chat.completions.create(
            model="models-0",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"continue_final_message": True},
        )
    assert refused.value.body["param"] == "messages"  # type: ignore[index]


def test_the_workers_salt_keeps_tenants_apart_on_the_host(host: PortwayServer) -> None:
    client = _sdk(host)
    for salt in ("tenant-a-digest", "tenant-b-digest", "tenant-a-digest"):
        client.chat.completions.create(
            model="models-0",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"cache_salt": salt},
        )
    first, second, third = MODEL.scopes[-3:]
    assert first == third != second


def test_workers_reach_hosted_models_through_the_openai_provider() -> None:
    settings = Settings.model_validate(
        {
            "models": [
                {"name": "tiny", "provider": "local", "weight": 3, "rpm": 50},
                {"name": "remote", "provider": "openai", "api_key": "sk-remote"},
            ]
        }
    )
    assert hosted_indexes(settings, ProviderRegistry()) == [0]
    abilities = {
        "context_window": 4096,
        "max_output_tokens": 512,
        "tools": True,
        "json_schema": True,
        "completions": True,
    }
    rewritten = worker_settings(
        settings,
        workers=2,
        base_url="http://127.0.0.1:9/v1",
        token=TOKEN,
        hosted={0: ("models-0", abilities)},
    )
    assert rewritten.server.workers == 2
    assert rewritten.models[1] == settings.models[1]
    hosted = rewritten.models[0]
    assert (hosted.name, hosted.provider, hosted.upstream_model) == ("tiny", "openai", "models-0")
    assert (hosted.weight, hosted.rpm) == (3, 50)
    assert hosted.api_key is not None and hosted.api_key.get_secret_value() == TOKEN
    assert hosted.pricing is not None and hosted.pricing.output == 0  # still free
    provider = ProviderRegistry().build(hosted)
    assert provider.capabilities.prefill  # a cut stream still resumes on it
    assert hosted.cache_salt  # each tenant's prompts in a prefix cache of their own
    assert provider.capabilities.context_window == 4096
    assert provider.capabilities.max_output_tokens == 512
