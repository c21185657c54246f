"""`/v1/responses` through the official SDK against the scripted fake upstream."""

from __future__ import annotations

import asyncio

import openai
import pytest
from pydantic import BaseModel

from tests.assistants.support import (
    MODEL,
    TEAM_B_KEY,
    sdk,
    start_gateway,
    tool_call,
    wait_for,
)
from tests.conftest import fake_model
from tests.fakes.openai_upstream import Drop, Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.responses.support import call, check_stream, sse_events, stored_rows, types_of

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
TINY = "tiny-gpt"  # the same upstream, with a 64-token context window


@pytest.fixture(scope="module")
def gateway(start_portway, fake_openai_server: FakeOpenAI) -> PortwayServer:
    server = start_gateway(start_portway, fake_openai_server)
    return server


@pytest.fixture(scope="module")
def tiny_gateway(start_portway, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "models": [
                fake_model(TINY, fake_openai_server.base_url, context_window=64),
            ],
            "router": {"*": {"retries": 0}},
        }
    )


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    return sdk(gateway)


def upstream_messages(fake: FakeOpenAI) -> list[dict]:
    return fake.requests[-1].body["messages"]


def test_basic_response_matches_the_spec_and_is_stored(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(content="Hi there.", prompt_tokens=11, completion_tokens=3))

    response = client.responses.create(
        model=MODEL, input="Hello?", instructions="Be brief.", metadata={"job": "greet"}
    )

    assert response.status == "completed"
    assert response.output_text == "Hi there."
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 3)
    assert response.usage.total_tokens == 14
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    assert response.id.startswith("resp_") and response.metadata == {"job": "greet"}
    assert upstream_messages(fake_openai) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello?"},
    ]
    assert not fake_openai.requests[-1].body.get("stream")  # nobody streams: a whole call
    body = call(gateway, "GET", f"/responses/{response.id}").json()
    assert_matches("Response", body)
    assert body["output"] == response.model_dump(mode="json", exclude_unset=True)["output"]
    assert client.responses.retrieve(response.id).output_text == "Hi there."


def test_the_ledger_row_names_the_response(gateway: PortwayServer, client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="ledger me")
    database_url = gateway.app.state.services.settings.database_url

    def ledgered() -> list[dict]:
        rows = asyncio.run(stored_rows(database_url))
        return [row for row in rows if row["request_id"] == response.id]

    (row,) = wait_for(ledgered)
    assert row["endpoint"] == "responses"
    assert row["key_id"] == "key_a"


def test_previous_response_id_chains_without_old_instructions(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(content="Nice to meet you, Ada."), Reply(content="You are Ada."))
    first = client.responses.create(model=MODEL, input="I am Ada.", instructions="Old rules.")
    second = client.responses.create(
        model=MODEL, input="Who am I?", previous_response_id=first.id, instructions="New rules."
    )
    assert second.output_text == "You are Ada."
    assert second.previous_response_id == first.id
    assert upstream_messages(fake_openai) == [
        {"role": "system", "content": "New rules."},
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "Who am I?"},
    ]


def test_store_false_is_not_retrievable_nor_chainable(
    gateway: PortwayServer, client: openai.OpenAI
) -> None:
    response = client.responses.create(model=MODEL, input="secret", store=False)
    assert response.status == "completed" and response.store is False
    assert call(gateway, "GET", f"/responses/{response.id}").status_code == 404
    chained = call(
        gateway,
        "POST",
        "/responses",
        json={"model": MODEL, "input": "again", "previous_response_id": response.id},
    )
    assert chained.status_code == 404
    assert chained.json()["error"]["param"] == "previous_response_id"


def test_function_tool_round_trip(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        Reply(tool_calls=[tool_call("call_1", "get_weather", '{"city": "Paris"}')]),
        Reply(content="It is sunny in Paris."),
    )
    first = client.responses.create(
        model=MODEL,
        input="Weather in Paris?",
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    (item,) = first.output
    assert item.type == "function_call"
    assert (item.call_id, item.name, item.arguments) == (
        "call_1",
        "get_weather",
        '{"city": "Paris"}',
    )
    sent = fake_openai.requests[-1].body
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    assert sent["tools"][0]["function"]["name"] == "get_weather"

    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "sunny"}],
        tools=[WEATHER],
    )
    assert second.output_text == "It is sunny in Paris."
    assert upstream_messages(fake_openai) == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [tool_call("call_1", "get_weather", '{"city": "Paris"}')],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]


def test_named_tool_choice_and_sampling_reach_the_upstream(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    client.responses.create(
        model=MODEL,
        input="hi",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        temperature=0.2,
        top_p=0.5,
        safety_identifier="user-42",
        reasoning={"effort": "low"},
    )
    sent = fake_openai.requests[-1].body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (sent["temperature"], sent["top_p"], sent["user"]) == (0.2, 0.5, "user-42")
    assert sent["reasoning_effort"] == "low"  # an OpenAI-compatible upstream gets it


def test_json_schema_with_parse(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    class Person(BaseModel):
        name: str
        age: int

    fake_openai.script(Reply(content='{"name": "Ada", "age": 36}'))
    parsed = client.responses.parse(model=MODEL, input="Who?", text_format=Person)
    assert parsed.output_parsed == Person(name="Ada", age=36)
    sent = fake_openai.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Person"
    assert sent["json_schema"]["schema"]["properties"]["age"] == {"title": "Age", "type": "integer"}


def test_json_object_format(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Reply(content="{}"))
    response = client.responses.create(
        model=MODEL, input="json please", text={"format": {"type": "json_object"}}
    )
    assert response.text.format.type == "json_object"
    assert fake_openai.requests[-1].body["response_format"] == {"type": "json_object"}


def test_max_output_tokens_makes_it_incomplete(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(content="a long answer", completion_tokens=50))
    response = client.responses.create(model=MODEL, input="Tell me all", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert fake_openai.requests[-1].body["max_completion_tokens"] == 16
    assert response.usage is not None and response.usage.output_tokens == 16
    assert_matches("Response", call(gateway, "GET", f"/responses/{response.id}").json())


def test_stream_events_follow_openai_order(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(content="Streaming works fine"))
    with client.responses.stream(model=MODEL, input="stream it") as stream:
        events = [event.model_dump(mode="json", exclude_unset=True) for event in stream]
        final = stream.get_final_response()
    check_stream(events)
    assert fake_openai.requests[-1].body["stream"] is True
    kinds = types_of(events)
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "Streaming works fine" and len(deltas) > 1
    assert final.output_text == "Streaming works fine"
    stored = call(gateway, "GET", f"/responses/{final.id}").json()
    (item,) = stored["output"]
    assert item["id"] == events[-1]["response"]["output"][0]["id"]
    assert item["content"][0]["text"] == "Streaming works fine"


def test_raw_stream_has_event_lines_and_function_call_events(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(tool_calls=[tool_call("call_9", "get_weather", '{"city": "Rome"}')]))
    response = call(
        gateway,
        "POST",
        "/responses",
        json={"model": MODEL, "input": "Rome?", "tools": [WEATHER], "stream": True},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    check_stream(events)
    kinds = types_of(events)
    assert kinds[2] == "response.output_item.added"
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == '{"city": "Rome"}' and done["name"] == "get_weather"
    assert kinds[-2:] == ["response.output_item.done", "response.completed"]


def test_a_failing_model_ends_the_stream_with_response_failed(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Fail(500))
    response = call(
        gateway, "POST", "/responses", json={"model": MODEL, "input": "x", "stream": True}
    )
    events = sse_events(response)
    check_stream(events)
    assert types_of(events) == ["response.created", "response.in_progress", "response.failed"]
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert call(gateway, "GET", f"/responses/{failed['id']}").json()["status"] == "failed"


def test_a_stream_cut_midway_closes_its_message_then_fails(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Drop(after=3, reply=Reply(content="a long answer that never ends")))
    response = call(
        gateway, "POST", "/responses", json={"model": MODEL, "input": "x", "stream": True}
    )
    events = sse_events(response)
    check_stream(events)
    kinds = types_of(events)
    assert "response.output_text.delta" in kinds
    assert kinds[-2:] == ["response.output_item.done", "response.failed"]
    assert events[-2]["item"]["status"] == "incomplete"
    stored = call(gateway, "GET", f"/responses/{events[-1]['response']['id']}").json()
    assert stored["status"] == "failed" and stored["output"][0]["status"] == "incomplete"


def test_a_failing_model_is_an_http_error_when_not_streamed(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Fail(429, "slow down", code="rate_limit_exceeded", error_type="requests"))
    response = call(gateway, "POST", "/responses", json={"model": MODEL, "input": "x"})
    assert response.status_code == 429
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_input_items_are_paginated(gateway: PortwayServer, client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        input=[
            {"role": "developer", "content": "Answer tersely."},
            {"role": "user", "content": [{"type": "input_text", "text": "one"}]},
            {"type": "message", "role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
        ],
    )
    page = client.responses.input_items.list(response.id, limit=2)
    assert_matches(
        "ResponseItemList", call(gateway, "GET", f"/responses/{response.id}/input_items").json()
    )
    texts = [item.content[0].text for item in page.data]  # type: ignore[union-attr]
    assert texts == ["three", "two"] and page.has_more
    rest = client.responses.input_items.list(response.id, limit=2, after=page.data[-1].id)
    assert [item.content[0].text for item in rest.data] == ["one", "Answer tersely."]  # type: ignore[union-attr]
    assert not rest.has_more
    ascending = client.responses.input_items.list(response.id, order="asc")
    assert [item.role for item in ascending.data] == ["developer", "user", "assistant", "user"]  # type: ignore[union-attr]


def test_input_tokens_counts_with_the_tokenizer(
    gateway: PortwayServer, client: openai.OpenAI
) -> None:
    short = client.responses.input_tokens.count(model=MODEL, input="Hello")
    long = client.responses.input_tokens.count(model=MODEL, input="Hello " * 50)
    assert_matches(
        "TokenCountsResource",
        call(
            gateway, "POST", "/responses/input_tokens", json={"model": MODEL, "input": "Hi"}
        ).json(),
    )
    assert 0 < short.input_tokens < long.input_tokens
    assert long.input_tokens - short.input_tokens >= 45


def test_delete(gateway: PortwayServer, client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="bye")
    client.responses.delete(response.id)
    assert call(gateway, "GET", f"/responses/{response.id}").status_code == 404
    assert call(gateway, "DELETE", f"/responses/{response.id}").status_code == 404
    assert call(gateway, "GET", f"/responses/{response.id}/input_items").status_code == 404


def test_another_tenant_sees_nothing(gateway: PortwayServer, client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="mine")
    for method, path in (
        ("GET", f"/responses/{response.id}"),
        ("GET", f"/responses/{response.id}/input_items"),
        ("DELETE", f"/responses/{response.id}"),
    ):
        assert call(gateway, method, path, key=TEAM_B_KEY).status_code == 404
    chained = call(
        gateway,
        "POST",
        "/responses",
        key=TEAM_B_KEY,
        json={"model": MODEL, "input": "x", "previous_response_id": response.id},
    )
    assert chained.status_code == 404
    assert client.responses.retrieve(response.id).id == response.id


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"model": "no-such-model", "input": "x"}, 404, "model", "model_not_found"),
        ({"model": MODEL}, 400, "input", "missing_required_parameter"),
        ({"input": "x"}, 400, "model", None),
        ({"model": MODEL, "input": 123}, 400, "input", None),
        ({"model": MODEL, "input": "x", "temperature": "hot"}, 400, "temperature", None),
        ({"model": MODEL, "input": "x", "max_output_tokens": 0}, 400, "max_output_tokens", None),
        (
            {"model": MODEL, "input": [{"role": "robot", "content": "x"}]},
            400,
            "input[0].role",
            None,
        ),
        (
            {"model": MODEL, "input": [{"type": "function_call_output"}]},
            400,
            "input[0].call_id",
            None,
        ),
        (
            {"model": MODEL, "input": "x", "tools": [{"type": "web_search_9"}]},
            400,
            "tools[0]",
            None,
        ),
        (
            {"model": MODEL, "input": "x", "text": {"format": {"type": "yaml"}}},
            400,
            "text.format",
            None,
        ),
        (
            {"model": MODEL, "input": "x", "tool_choice": {"type": "function", "name": "nope"}},
            400,
            "tool_choice",
            None,
        ),
        (
            {"model": MODEL, "input": "x", "previous_response_id": "resp_nope"},
            404,
            "previous_response_id",
            None,
        ),
        ({"model": MODEL, "input": "x", "conversation": "conv_nope"}, 404, "conversation", None),
        ({"model": MODEL, "input": "x", "include": ["bogus.value"]}, 400, "include[0]", None),
        (
            {"model": MODEL, "input": "x", "include": "file_search_call.results"},
            400,
            "include",
            None,
        ),
        (
            {"model": MODEL, "input": "x", "reasoning": {"effort": "max"}},
            400,
            "reasoning.effort",
            None,
        ),
        (
            {"model": MODEL, "input": "x", "parallel_tool_calls": "yes"},
            400,
            "parallel_tool_calls",
            None,
        ),
        ({"model": MODEL, "input": "x", "safety_identifier": 5}, 400, "safety_identifier", None),
        ({"model": MODEL, "input": "x", "user": ["u"]}, 400, "user", None),
        ({"model": MODEL, "input": "x", "store": "no"}, 400, "store", None),
        ({"model": MODEL, "input": [5]}, 400, "input[0]", None),
        ({"model": 5, "input": "x"}, 400, "model", None),
    ],
)
def test_client_errors(
    gateway: PortwayServer, body: dict, status: int, param: str | None, code: str | None
) -> None:
    response = call(gateway, "POST", "/responses", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code


def test_retrieve_refuses_an_unknown_include(gateway: PortwayServer, client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="x")
    bad = call(gateway, "GET", f"/responses/{response.id}?include[]=bogus.value")
    assert bad.status_code == 400, bad.text
    assert_matches("ErrorResponse", bad.json())
    assert bad.json()["error"]["param"] == "include"
    fine = call(gateway, "GET", f"/responses/{response.id}?include[]=file_search_call.results")
    assert fine.status_code == 200 and fine.json()["id"] == response.id


def test_unknown_ids_are_404(gateway: PortwayServer) -> None:
    for method, path in (
        ("GET", "/responses/resp_nope"),
        ("DELETE", "/responses/resp_nope"),
        ("GET", "/responses/resp_nope/input_items"),
    ):
        response = call(gateway, method, path)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_truncation_disabled_overflow_is_a_clear_400(tiny_gateway: PortwayServer) -> None:
    long_input = "word " * 200
    response = call(tiny_gateway, "POST", "/responses", json={"model": TINY, "input": long_input})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_truncation_auto_drops_the_oldest_items(
    tiny_gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    items = [{"role": "user", "content": "old " * 40}, {"role": "user", "content": "newest"}]
    response = call(
        tiny_gateway,
        "POST",
        "/responses",
        json={"model": TINY, "input": items, "truncation": "auto"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["truncation"] == "auto"
    assert upstream_messages(fake_openai) == [{"role": "user", "content": "newest"}]


def test_image_input_reaches_the_upstream_as_a_content_part(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    response = client.responses.create(
        model=MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                ],
            }
        ],
    )
    assert response.status == "completed"
    assert upstream_messages(fake_openai) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
            ],
        }
    ]
    listed = call(gateway, "GET", f"/responses/{response.id}/input_items").json()
    assert_matches("ResponseItemList", listed)
    assert listed["data"][0]["content"][1]["image_url"] == image


def test_an_image_by_file_id_is_a_clear_400(gateway: PortwayServer) -> None:
    part = {"type": "input_image", "file_id": "file-abc", "detail": "auto"}
    response = call(
        gateway,
        "POST",
        "/responses",
        json={"model": MODEL, "input": [{"role": "user", "content": [part]}]},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input"


def test_truncation_auto_drops_a_tool_call_with_its_result(
    tiny_gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    items = [
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "data " * 60},
        {"role": "user", "content": "newest"},
    ]
    response = call(
        tiny_gateway,
        "POST",
        "/responses",
        json={"model": TINY, "input": items, "truncation": "auto"},
    )
    assert response.status_code == 200, response.text
    assert upstream_messages(fake_openai) == [{"role": "user", "content": "newest"}]


def test_file_input_reaches_the_upstream_as_a_file_part(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    data = "data:application/pdf;base64,JVBERi0xLjQK"
    client.responses.create(
        model=MODEL,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_file", "filename": "a.pdf", "file_data": data},
                    {"type": "input_text", "text": "Summarise."},
                ],
            }
        ],
    )
    (message,) = upstream_messages(fake_openai)
    assert message["content"] == [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": data}},
        {"type": "text", "text": "Summarise."},
    ]


def test_item_references_name_earlier_items(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Reply(content="Blue."), Reply(content="You said blue."))
    first = client.responses.create(model=MODEL, input="Favourite colour? One word.")
    answer_id = first.output[0].id
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[
            {"type": "item_reference", "id": answer_id},
            {"role": "user", "content": "Repeat that."},
        ],
    )
    assert second.output_text == "You said blue."
    assert upstream_messages(fake_openai)[-2:] == [
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Repeat that."},
    ]
    listed = client.responses.input_items.list(second.id, order="asc").data
    assert listed[0].id == answer_id and listed[0].type == "message"
    missing = call(
        gateway,
        "POST",
        "/responses",
        json={
            "model": MODEL,
            "previous_response_id": first.id,
            "input": [{"type": "item_reference", "id": "msg_nope"}],
        },
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "input[0].id"
