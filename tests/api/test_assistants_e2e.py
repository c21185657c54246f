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

from tests.assistants.support import tool_call, wait_for_status
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MASTER = "sk-master-e2e"
MODEL = "fake-gpt"
KEY_CACHE_TTL = 0.1
POLL_MS = 20
RESULTS_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"

REFUNDS = """# Refund policy
Customers may return unused items within 30 days of delivery. Refunds are paid to the
original payment method within five business days after the warehouse receives the parcel.
"""
SHIPPING = """# Shipping
Orders leave our warehouse in Lisbon every weekday. Standard delivery inside the EU takes
three to five days; express courier delivery takes one day.
"""


@pytest.fixture(scope="module")
def gateway(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "keys": {"cache_ttl_seconds": KEY_CACHE_TTL},
            "models": [fake_model(MODEL, fake_openai_server.base_url)],
            "assistants": {"poll_after_ms": 10, "sweep_interval_seconds": 0.05},
            "router": {"*": {"retries": 0}},
            "code_interpreter": {"cpu_seconds": 5, "wall_seconds": 20},
        }
    )


def create_key(gateway: PortwayServer, **fields: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{gateway.url}/v1/admin/keys",
        json=fields,
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def sdk(gateway: PortwayServer, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=secret, max_retries=0)


@pytest.fixture(scope="module")
def team_a_key(gateway: PortwayServer) -> dict[str, Any]:
    return create_key(gateway, name="a", team="team-a")


@pytest.fixture(scope="module")
def team_b_key(gateway: PortwayServer) -> dict[str, Any]:
    return create_key(gateway, name="b", team="team-b")


@pytest.fixture
def alice(gateway: PortwayServer, team_a_key: dict[str, Any]) -> openai.OpenAI:
    return sdk(gateway, team_a_key["key"])


@pytest.fixture
def bob(gateway: PortwayServer, team_b_key: dict[str, Any]) -> openai.OpenAI:
    return sdk(gateway, team_b_key["key"])


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
    fake_openai.script(
        Reply(tool_calls=[tool_call("call_fs", "file_search", '{"query": "refund payment"}')]),
        Reply(content="Refunds are paid within five business days [1]."),
    )

    run = alice.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed", run.last_error
    assert "five business days" in tool_message_to_model(fake_openai)
    step = tool_step(alice, thread.id, run.id, include=[RESULTS_CONTENT])
    (call,) = step.step_details.tool_calls
    assert call.type == "file_search" and call.id == "call_fs"
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
        attachments=[{"file_id": shipping, "tools": [{"type": "file_search"}]}],
    )
    fake_openai.script(
        Reply(tool_calls=[tool_call("call_ship", "file_search", '{"query": "warehouse"}')]),
        Reply(content="From Lisbon [1]."),
    )

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
                    "attachments": [{"file_id": refunds, "tools": [{"type": "file_search"}]}],
                }
            ]
        )
        fake_openai.script(
            Reply(tool_calls=[tool_call("call_w", "file_search", '{"query": "refunds"}')]),
            Reply(content="Five business days [1]."),
        )
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
                attachments=[{"file_id": file_id, "tools": [{"type": "file_search"}]}],
            )
    assert alice.beta.threads.messages.list(thread.id).data == []
    assert alice.beta.threads.retrieve(thread.id).tool_resources.file_search is None


def test_attachments_of_a_new_thread_and_run_are_searchable(
    alice: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    refunds = upload(alice, "refunds.md", REFUNDS)
    assistant = alice.beta.assistants.create(model=MODEL, tools=[{"type": "file_search"}])
    fake_openai.script(
        Reply(tool_calls=[tool_call("call_r", "file_search", '{"query": "refunds"}')]),
        Reply(content="Five business days [1]."),
    )

    run = alice.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={
            "messages": [
                {
                    "role": "user",
                    "content": "Refund time?",
                    "attachments": [{"file_id": refunds, "tools": [{"type": "file_search"}]}],
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
