"""code_interpreter in a response, in the real bubblewrap sandbox."""

from __future__ import annotations

import shutil

import openai
import orjson
import pytest

from tests.assistants.support import tool_call
from tests.conftest import PortwayFactory, fake_model, service_unavailable
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.responses.support import call

MODEL = "fake-gpt"


@pytest.fixture(scope="module")
def sandboxed(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    if shutil.which("bwrap") is None:
        service_unavailable("bubblewrap is not installed (apt-get install bubblewrap)")
    server = start_portway(
        {
            "models": [fake_model(MODEL, fake_openai_server.base_url)],
            "code_interpreter": {"cpu_seconds": 5, "wall_seconds": 20},
        }
    )
    if not server.app.state.services.builtin_tools["code_interpreter"].available:
        service_unavailable("no sandbox boundary here")
    return server


def test_code_runs_in_the_sandbox_and_the_model_sees_its_output(
    sandboxed: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    client = openai.OpenAI(base_url=sandboxed.base_url, api_key="unused", max_retries=0)
    arguments = orjson.dumps({"code": "print(6 * 7)"}).decode()
    fake_openai.script(
        Reply(tool_calls=[tool_call("call_ci", "code_interpreter", arguments)]),
        Reply(content="It is 42."),
    )
    response = client.responses.create(
        model=MODEL,
        input="What is 6 * 7? Use Python.",
        tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
        include=["code_interpreter_call.outputs"],
    )
    interpreter, answer = response.output
    assert answer.type == "message"
    assert interpreter.type == "code_interpreter_call"
    assert interpreter.code == "print(6 * 7)" and interpreter.status == "completed"
    assert interpreter.outputs is not None
    assert "42" in "".join(getattr(output, "logs", "") for output in interpreter.outputs)
    assert response.output_text == "It is 42."
    assert "42" in fake_openai.requests[-1].body["messages"][-1]["content"]
    assert_matches("Response", call(sandboxed, "GET", f"/responses/{response.id}").json())
