"""Schemas the local model cannot enforce: a 400 naming the parameter, never a dead server.

Found in review: ``{"type": "string", "maxLength": 2000}`` made llama.cpp reject the
grammar, llama-cpp-python added the NULL sampler anyway and the process segfaulted; a
queued run with that format crashed it again after every restart. Portway runs here as a
real subprocess so that a crash is an assertion, not the end of the test session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from tests.conftest import with_private_state
from tests.fakes.process import PortwayProcess

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MODEL = "smollm2-135m"
LONG_STRING = {"type": "string", "maxLength": 2000}


def json_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


def tool_with(parameters: dict[str, Any], name: str = "lookup") -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


ARGUMENTS_WITH_LONG_STRING = {
    "type": "object",
    "properties": {"query": LONG_STRING},
    "required": ["query"],
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortwayProcess]:
    directory = tmp_path_factory.mktemp("local-crashes")
    settings = with_private_state(
        {"models": [{"name": MODEL, "provider": "local"}], "assistants": {"poll_after_ms": 50}},
        directory,
    )
    process = PortwayProcess(settings, directory).start(timeout=180)
    yield process
    process.stop()


@pytest.fixture
def client(served: PortwayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base_url, api_key="unused", max_retries=0, timeout=300)


def assert_alive(served: PortwayProcess, client: openai.OpenAI) -> None:
    assert served.running, served.log()[-3000:]
    assert httpx.get(f"{served.url}/health/live", timeout=30).status_code == 200
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert answer.usage is not None and answer.usage.completion_tokens >= 1


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"response_format": json_format(LONG_STRING)}, "response_format.json_schema.schema"),
        (
            {
                "response_format": json_format(
                    {"type": "object", "properties": {"a": LONG_STRING}, "required": ["a"]}
                )
            },
            "response_format.json_schema.schema",
        ),
        (
            {"tools": [tool_with(ARGUMENTS_WITH_LONG_STRING)], "tool_choice": "required"},
            "tools[0].function.parameters",
        ),
        (
            {
                "tools": [
                    tool_with({"type": "object", "properties": {}}, "fine"),
                    tool_with(ARGUMENTS_WITH_LONG_STRING),
                ],
                "tool_choice": "auto",
            },
            "tools[1].function.parameters",
        ),
        (
            {"response_format": json_format({"type": "array", "maxItems": 5000})},
            "response_format.json_schema.schema",
        ),
        (
            {"response_format": json_format({"type": "string", "pattern": "^a{0,100000000}$"})},
            "response_format.json_schema.schema",
        ),
    ],
    ids=["string", "property", "required-tool", "second-tool", "items", "pattern"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_unenforceable_schema_is_400_and_the_server_lives(
    served: PortwayProcess, client: openai.OpenAI, extra: dict[str, Any], param: str, stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Write a long text."}],
            max_tokens=8,
            stream=stream,
            **extra,
        )
    assert caught.value.param == param
    assert caught.value.code is None or isinstance(caught.value.code, str)
    assert_alive(served, client)


def test_moderate_lengths_are_enforced(served: PortwayProcess, client: openai.OpenAI) -> None:
    """Bounds such as the built-in tools' (a query of at most 300 characters) still work."""
    schema = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 3, "maxLength": 300},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
        },
        "required": ["query", "tags"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Search for refund rules."}],
        tools=[tool_with(schema)],
        tool_choice="required",
        max_tokens=400,
        temperature=0,
    )
    (call,) = completion.choices[0].message.tool_calls
    jsonschema.validate(json.loads(call.function.arguments), schema)
    short = {"type": "string", "minLength": 2, "maxLength": 12}
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name a colour."}],
        response_format=json_format(short),
        max_tokens=40,
        temperature=0,
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content), short)


def test_run_with_unenforceable_format_fails_once_and_stays_failed(
    served: PortwayProcess, client: openai.OpenAI
) -> None:
    assistant = client.beta.assistants.create(
        model=MODEL, response_format=json_format(LONG_STRING), temperature=0
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say hello."}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
    )
    assert run.status == "failed"
    assert run.last_error is not None and "local model" in run.last_error.message
    assert_alive(served, client)
    # After a restart nothing picks the run up again (it is failed, not queued).
    served.stop()
    served.start(timeout=180)
    assert_alive(served, client)
    again = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert (again.status, again.last_error) == ("failed", run.last_error)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert steps == []
