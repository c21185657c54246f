"""The Assistants API with the real built-in tools and real virtual keys, end to end.

A real Portway (master key set, keys created through the admin API) in front of the
scripted fake upstream model; the official ``openai`` SDK drives files, vector stores,
assistants, threads and runs. file_search searches real vector stores, code_interpreter
runs real code in the sandbox.
"""

from __future__ import annotations

import asyncio
import io
import re
import threading
import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.assistants.support import WEATHER_TOOL, tool_call, wait_for, wait_for_status
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.retrieval.helpers import REFUNDS, SHIPPING

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MASTER = "sk-master-e2e"
MODEL = "fake-gpt"
KEY_CACHE_TTL = 0.1
POLL_MS = 20
PRICING = {"input": 1000.0, "output": 1000.0}
RESULTS_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


@pytest.fixture(scope="module")
def gateway(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "keys": {"cache_ttl_seconds": KEY_CACHE_TTL},
            # $0.001 a token: budgets are easy to exhaust.
            "models": [fake_model(MODEL, fake_openai_server.base_url, pricing=PRICING)],
            "assistants": {"poll_after_ms": 10, "sweep_interval_seconds": 0.05},
            "router": {"*": {"retries": 0}},
            "code_interpreter": {"cpu_seconds": 5, "wall_seconds": 20},
        }
    )


def admin(gateway: PortwayServer, method: str, path: str, **fields: Any) -> dict[str, Any]:
    response = httpx.request(
        method,
        f"{gateway.url}/v1/admin{path}",
        json=fields or None,
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert response.is_success, response.text
    return response.json()  # type: ignore[no-any-return]


def create_key(gateway: PortwayServer, **fields: Any) -> dict[str, Any]:
    return admin(gateway, "POST", "/keys", **fields)


@pytest.fixture(scope="module")
def team_a_key(gateway: PortwayServer) -> dict[str, Any]:
    return create_key(gateway, name="a", team="team-a")


@pytest.fixture(scope="module")
def team_b_key(gateway: PortwayServer) -> dict[str, Any]:
    return create_key(gateway, name="b", team="team-b")


@pytest.fixture
def alice(gateway: PortwayServer, team_a_key: dict[str, Any]) -> openai.OpenAI:
    return gateway.sdk(team_a_key["key"])


@pytest.fixture
def bob(gateway: PortwayServer, team_b_key: dict[str, Any]) -> openai.OpenAI:
    return gateway.sdk(team_b_key["key"])


def upload(client: openai.OpenAI, name: str, data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return client.files.create(file=(name, io.BytesIO(raw)), purpose="assistants").id


def answer_of(client: openai.OpenAI, thread_id: str, run_id: str) -> Any:
    (message,) = client.beta.threads.messages.list(thread_id=thread_id, run_id=run_id).data
    return message


def tool_step(client: openai.OpenAI, thread_id: str, run_id: str, **query: Any) -> Any:
    steps = client.beta.threads.runs.steps.list(
        run_id=run_id, thread_id=thread_id, order="asc", **query
    ).data
    (step,) = [step for step in steps if step.type == "tool_calls"]
    return step


def tool_message_to_model(fake: FakeOpenAI) -> str:
    """What the model was told the tool returned (the last request's tool message)."""
    messages = fake.requests[-1].body["messages"]
    (tool,) = [m for m in messages if m["role"] == "tool"]
    return str(tool["content"])


def script_search(fake: FakeOpenAI, query: str, answer: str) -> None:
    """The model searches for ``query``, then answers ``answer``."""
    arguments = orjson.dumps({"query": query}).decode()
    fake.script(
        Reply(tool_calls=[tool_call("call_search", "file_search", arguments)]),
        Reply(content=answer),
    )


def searchable(file_id: str) -> list[dict[str, Any]]:
    """A message's ``attachments`` giving ``file_id`` to file_search."""
    return [{"file_id": file_id, "tools": [{"type": "file_search"}]}]


def assert_cites(message: Any, file_id: str) -> None:
    text = message.content[0].text
    citations = [a for a in text.annotations if a.type == "file_citation"]
    assert citations, text
    for annotation in citations:
        assert annotation.file_citation.file_id == file_id
        assert text.value[annotation.start_index : annotation.end_index] == annotation.text
        assert re.fullmatch(r"\[\d+\]", annotation.text)


# file_search --------------------------------------------------------------------------


def test_file_search_over_an_assistant_vector_store(
    alice: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    store = alice.vector_stores.create(name="policies")
    refunds = alice.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("refunds.md", io.BytesIO(REFUNDS.encode())),
        poll_interval_ms=POLL_MS,
    ).id
    shipping = upload(alice, "shipping.md", SHIPPING)
    alice.vector_stores.files.create_and_poll(
        shipping, vector_store_id=store.id, poll_interval_ms=POLL_MS
    )
    assert alice.vector_stores.retrieve(store.id).file_counts.completed == 2
    assistant = alice.beta.assistants.create(
        model=MODEL,
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = alice.beta.threads.create(
        messages=[{"role": "user", "content": "How long do refunds take?"}]
    )
    script_search(fake_openai, "refund payment", "Refunds are paid within five business days [1].")

    run = alice.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed", run.last_error
    assert "five business days" in tool_message_to_model(fake_openai)
    step = tool_step(alice, thread.id, run.id, include=[RESULTS_CONTENT])
    (call,) = step.step_details.tool_calls
    assert call.type == "file_search" and call.id == "call_search"
    first = call.file_search.results[0]
    assert first.file_id == refunds and first.file_name == "refunds.md"
    assert "five business days" in first.content[0].text
    without_content = tool_step(alice, thread.id, run.id)
    assert without_content.step_details.tool_calls[0].file_search.results[0].content is None
    assert_cites(answer_of(alice, thread.id, run.id), refunds)


def test_file_search_over_a_message_attachment(
    alice: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    shipping = upload(alice, "shipping.md", SHIPPING)
    assistant = alice.beta.assistants.create(model=MODEL, tools=[{"type": "file_search"}])
    thread = alice.beta.threads.create()
    alice.beta.threads.messages.create(
        thread.id,
        role="user",
        content="Where do orders ship from?",
        attachments=searchable(shipping),
    )
    script_search(fake_openai, "warehouse", "From Lisbon [1].")

    run = alice.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed", run.last_error
    assert "Lisbon" in tool_message_to_model(fake_openai)
    thread = alice.beta.threads.retrieve(thread.id)
    (store_id,) = thread.tool_resources.file_search.vector_store_ids
    store_files = alice.vector_stores.files.list(vector_store_id=store_id).data
    assert [(f.id, f.status) for f in store_files] == [(shipping, "completed")]
    assert_cites(answer_of(alice, thread.id, run.id), shipping)


class IndexingGate:
    """Holds the server's indexing jobs until the test opens the gate (thread-safe)."""

    def __init__(self, gateway: PortwayServer) -> None:
        self._indexer = gateway.app.state.services.retrieval.vector_stores.indexer
        self._submit = self._indexer.submit
        self._opened = threading.Event()
        self._waiting: set[asyncio.Task[None]] = set()
        self._indexer.submit = self._hold

    def _hold(self, jobs: Any) -> None:
        jobs = list(jobs)

        async def later() -> None:
            await asyncio.to_thread(self._opened.wait, 30)
            self._submit(jobs)

        task = asyncio.create_task(later())
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    def open(self) -> None:
        self._opened.set()
        self._indexer.submit = self._submit


def test_a_run_waits_for_its_threads_files_to_be_indexed(
    gateway: PortwayServer, alice: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    refunds = upload(alice, "refunds.md", REFUNDS)
    assistant = alice.beta.assistants.create(model=MODEL, tools=[{"type": "file_search"}])
    gate = IndexingGate(gateway)
    try:
        thread = alice.beta.threads.create(
            messages=[
                {
                    "role": "user",
                    "content": "Refund time?",
                    "attachments": searchable(refunds),
                }
            ]
        )
        script_search(fake_openai, "refunds", "Five business days [1].")
        run = alice.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        wait_for_status(alice, thread.id, run.id, {"in_progress"})
        time.sleep(0.3)  # long enough for a model call that did not wait
        assert fake_openai.requests == []
    finally:
        gate.open()

    run = alice.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=POLL_MS)
    assert run.status == "completed", run.last_error
    assert "five business days" in tool_message_to_model(fake_openai)
    assert_cites(answer_of(alice, thread.id, run.id), refunds)


def test_attachments_must_be_files_of_the_caller(alice: openai.OpenAI, bob: openai.OpenAI) -> None:
    bobs = upload(bob, "bob.txt", "bob's notes")
    thread = alice.beta.threads.create()
    for file_id in ("file-missing", bobs):
        with pytest.raises(openai.NotFoundError):
            alice.beta.threads.messages.create(
                thread.id,
                role="user",
                content="Read this",
                attachments=searchable(file_id),
            )
    assert alice.beta.threads.messages.list(thread.id).data == []
    assert alice.beta.threads.retrieve(thread.id).tool_resources.file_search is None


def test_attachments_of_a_new_thread_and_run_are_searchable(
    alice: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    refunds = upload(alice, "refunds.md", REFUNDS)
    assistant = alice.beta.assistants.create(model=MODEL, tools=[{"type": "file_search"}])
    script_search(fake_openai, "refunds", "Five business days [1].")

    run = alice.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={
            "messages": [
                {
                    "role": "user",
                    "content": "Refund time?",
                    "attachments": searchable(refunds),
                }
            ]
        },
    )

    assert run.status == "completed", run.last_error
    assert "five business days" in tool_message_to_model(fake_openai)
    assert_cites(answer_of(alice, run.thread_id, run.id), refunds)


# code_interpreter ---------------------------------------------------------------------

CODE = """
import csv
with open("prices.csv") as f:
    rows = list(csv.DictReader(f))
total = sum(int(r["price"]) for r in rows)
print("total", total)
with open("total.csv", "w") as f:
    f.write(f"total,{total}\\n")
"""


def test_code_interpreter_reads_inputs_and_writes_a_file(
    alice: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    prices = upload(alice, "prices.csv", "item,price\napple,3\npear,4\nfig,35\n")
    assistant = alice.beta.assistants.create(
        model=MODEL,
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [prices]}},
    )
    thread = alice.beta.threads.create(messages=[{"role": "user", "content": "Sum the prices."}])
    code_call = tool_call("call_ci", "code_interpreter", orjson.dumps({"code": CODE}).decode())
    fake_openai.script(
        Reply(tool_calls=[code_call]),
        Reply(content="The total is 42."),
    )

    run = alice.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed", run.last_error
    assert "total 42" in tool_message_to_model(fake_openai)
    step = tool_step(alice, thread.id, run.id)
    (call,) = step.step_details.tool_calls
    assert call.type == "code_interpreter" and call.code_interpreter.input == CODE
    logs = [o.logs for o in call.code_interpreter.outputs if o.type == "logs"]
    assert logs and "total 42" in logs[0]
    message = answer_of(alice, thread.id, run.id)
    (attachment,) = message.attachments
    assert alice.files.content(attachment.file_id).read() == b"total,42\n"
    assert alice.files.retrieve(attachment.file_id).filename == "total.csv"


# tenancy ------------------------------------------------------------------------------


def test_team_b_sees_nothing_of_team_a(
    alice: openai.OpenAI, bob: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    file_id = upload(alice, "refunds.md", REFUNDS)
    store = alice.vector_stores.create(name="a-store", file_ids=[file_id])
    assistant = alice.beta.assistants.create(model=MODEL)
    thread = alice.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    fake_openai.script(Reply(content="hello"))
    run = alice.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    bob_file = upload(bob, "mine.txt", "bob's own")
    bob_assistant = bob.beta.assistants.create(model=MODEL)

    for attempt in (
        lambda: bob.beta.assistants.retrieve(assistant.id),
        lambda: bob.beta.threads.retrieve(thread.id),
        lambda: bob.beta.threads.messages.list(thread_id=thread.id),
        lambda: bob.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
        lambda: bob.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id),
        lambda: bob.files.retrieve(file_id),
        lambda: bob.files.content(file_id),
        lambda: bob.vector_stores.retrieve(store.id),
        lambda: bob.vector_stores.files.list(vector_store_id=store.id),
        lambda: bob.beta.threads.runs.create(thread_id=thread.id, assistant_id=bob_assistant.id),
        lambda: bob.beta.assistants.delete(assistant.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()

    alice_assistants = {a.id for a in alice.beta.assistants.list(limit=100).data}
    bob_assistants = {a.id for a in bob.beta.assistants.list(limit=100).data}
    assert assistant.id in alice_assistants and bob_assistant.id in bob_assistants
    assert not alice_assistants & bob_assistants
    alice_files = {f.id for f in alice.files.list().data}
    bob_files = {f.id for f in bob.files.list().data}
    assert file_id in alice_files and bob_file in bob_files
    assert not alice_files & bob_files
    assert store.id not in {s.id for s in bob.vector_stores.list(limit=100).data}
    assert store.id in {s.id for s in alice.vector_stores.list(limit=100).data}
    # Team B cannot point its own assistant at team A's vector store or files.
    with pytest.raises(openai.NotFoundError):
        bob.vector_stores.create(name="steal", file_ids=[file_id])
    listing = bob.beta.assistants.with_raw_response.list().http_response.json()
    assert_matches("ListAssistantsResponse", listing)


# The run's creator is looked up again before each model call ----------------------------


def start_weather_run(client: openai.OpenAI, fake: FakeOpenAI) -> Any:
    """A run waiting for a function's output (one model call made, one more scripted)."""
    assistant = client.beta.assistants.create(model=MODEL, tools=[WEATHER_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    fake.script(
        Reply(tool_calls=[tool_call("call_w", "get_weather", '{"city": "Oslo"}')]),
        Reply(content="It is cold."),
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=POLL_MS
    )
    assert run.status == "requires_action"
    return run


def submit_weather(client: openai.OpenAI, run: Any) -> Any:
    return client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=run.thread_id,
        tool_outputs=[{"tool_call_id": "call_w", "output": "-5C"}],
        poll_interval_ms=POLL_MS,
    )


def test_a_revoked_key_stops_its_runs(gateway: PortwayServer, fake_openai: FakeOpenAI) -> None:
    creator = create_key(gateway, team="team-r")
    colleague = gateway.sdk(create_key(gateway, team="team-r")["key"])
    run = start_weather_run(gateway.sdk(creator["key"]), fake_openai)

    admin(gateway, "POST", f"/keys/{creator['id']}/revoke")
    with pytest.raises(openai.AuthenticationError):
        submit_weather(gateway.sdk(creator["key"]), run)
    finished = submit_weather(colleague, run)  # a key of the same team may answer

    assert finished.status == "failed"
    assert finished.last_error is not None and finished.last_error.code == "server_error"
    assert "revoked" in finished.last_error.message
    assert creator["id"] in finished.last_error.message
    assert len(fake_openai.requests) == 1  # no model call after the revocation
    assert colleague.beta.threads.messages.list(run.thread_id, run_id=run.id).data == []


def test_the_creators_current_budget_applies(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    creator = create_key(gateway, team="team-q", max_budget=10.0, budget_period="daily")
    client = gateway.sdk(creator["key"])
    run = start_weather_run(client, fake_openai)

    admin(gateway, "PATCH", f"/keys/{creator['id']}", max_budget=0.0, budget_period="daily")
    finished = submit_weather(client, run)

    assert finished.status == "failed"
    assert finished.last_error is not None
    assert finished.last_error.code == "rate_limit_exceeded"
    assert "budget" in finished.last_error.message
    assert len(fake_openai.requests) == 1


def test_a_key_that_expires_mid_run_stops_it(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    creator = create_key(gateway, team="team-e", expires_in=1.0)
    client = gateway.sdk(creator["key"])
    colleague = gateway.sdk(create_key(gateway, team="team-e")["key"])
    run = start_weather_run(client, fake_openai)

    wait_for(lambda: time.time() > creator["expires_at"], timeout=5)
    finished = submit_weather(colleague, run)

    assert finished.status == "failed"
    assert finished.last_error is not None and "expired" in finished.last_error.message
