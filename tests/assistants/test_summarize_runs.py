"""Runs with ``truncation_strategy: {type: summarize}`` (a Portway extension): the thread's
oldest messages reach the model as one summary kept with the thread, which the thread's
next run reuses."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from sqlalchemy import select

from portway.context.compactor import SUMMARY_HEADER
from portway.store import Database
from portway.store.models.context import ContextSummaryRow
from tests.assistants.support import TEAM_A_KEY, use_test_tenants
from tests.conftest import PortwayFactory, fake_model
from tests.context.summaries import Summaries, model_calls, summarizer_calls
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer

MODEL = "run-small"
WINDOW = 400


@pytest.fixture(scope="module")
def door(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    server = start_portway(
        {
            "models": [
                fake_model(
                    MODEL,
                    fake_openai_server.base_url,
                    context_window=WINDOW,
                    context={"summary_max_tokens": 48, "reserve_output_tokens": 64},
                )
            ],
            "assistants": {"poll_after_ms": 10, "sweep_interval_seconds": 0.05},
        }
    )
    use_test_tenants(server)
    return server


@pytest.fixture
def upstream(fake_openai: FakeOpenAI) -> Summaries:
    summaries = Summaries()
    fake_openai.default = summaries
    return summaries


async def summaries_of(database_url: str, chain: str) -> list[dict[str, Any]]:
    database = Database(database_url)
    await database.start()
    try:
        async with database.connect() as connection:
            rows = await connection.execute(
                select(ContextSummaryRow.units, ContextSummaryRow.summary).where(
                    ContextSummaryRow.chain == chain
                )
            )
            return [{"units": units, "summary": summary} for units, summary in rows.all()]
    finally:
        await database.close()


def test_a_summarize_run_sends_a_summary_kept_with_the_thread(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    client = door.sdk(TEAM_A_KEY)
    assistant = client.beta.assistants.create(model=MODEL, instructions="Be brief.")
    thread = client.beta.threads.create()
    for turn in range(30):
        client.beta.threads.messages.create(
            thread.id, role="user", content=f"Question {turn}: what about the lighthouse {turn}?"
        )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "summarize"},  # type: ignore[typeddict-item]
        max_completion_tokens=256,
    )
    assert run.status == "completed", run.last_error
    assert run.truncation_strategy.type == "summarize"
    calls = len(summarizer_calls(fake_openai))
    assert calls >= 1
    sent = model_calls(fake_openai)[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1] == {"role": "system", "content": f"{SUMMARY_HEADER}\n{upstream.written[-1]}"}
    assert sent[-1]["content"] == "Question 29: what about the lighthouse 29?"
    database_url = door.app.state.services.settings.database_url
    stored = asyncio.run(summaries_of(database_url, thread.id))
    assert upstream.written[-1] in {row["summary"] for row in stored}

    # the next run of the thread reuses it
    client.beta.threads.messages.create(thread.id, role="user", content="One more question?")
    again = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "summarize"},  # type: ignore[typeddict-item]
        max_completion_tokens=256,
    )
    assert again.status == "completed", again.last_error
    assert len(summarizer_calls(fake_openai)) == calls
    resent = model_calls(fake_openai)[-1].body["messages"]
    assert resent[1] == sent[1]
    assert resent[-1]["content"] == "One more question?"


def test_an_unknown_truncation_type_is_still_a_400(door: PortwayServer) -> None:
    client = door.sdk(TEAM_A_KEY)
    assistant = client.beta.assistants.create(model=MODEL)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            truncation_strategy={"type": "forget"},  # type: ignore[typeddict-item]
        )
