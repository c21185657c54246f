"""The Batch API through the SDK against the fake OpenAI upstream: exact per-line results,
cancellation, tenancy, validation, spec shapes and the ledger's batch discount."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import openai
import pytest

from tests.batches.support import (
    MODEL,
    chat_line,
    file_lines,
    issue_key,
    jsonl,
    new_key,
    upload,
    wait_for,
)
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import ByText, Fail, FakeOpenAI, Reply, last_user_text
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches

MASTER = "sk-master-batches"
CONCURRENCY = 8


@pytest.fixture(scope="module")
def gateway(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "models": [
                fake_model(
                    MODEL, fake_openai_server.base_url, pricing={"input": 1.0, "output": 2.0}
                )
            ],
            # Injected upstream failures must reach their lines as they are: no retry, and
            # no breaker taking the deployment out for the healthy lines.
            "router": {MODEL: {"retries": 0, "breaker": {"enabled": False}}},
            "batches": {"concurrency": CONCURRENCY, "poll_interval_seconds": 0.05},
        }
    )


@pytest.fixture
def client(gateway: PortwayServer) -> openai.OpenAI:
    key = new_key(gateway.url, MASTER)
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def _custom_ids(lines: list[dict[str, Any]]) -> list[str]:
    return [line["custom_id"] for line in lines]


def test_a_500_line_batch_completes_with_exact_per_line_results(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = ByText(
        "UPSTREAM-400",
        Fail(
            400, "That request is malformed.", code="bad_thing", error_type="invalid_request_error"
        ),
        otherwise=ByText("UPSTREAM-500", Fail(500), otherwise=Reply()),
    )
    lines, expected = [], {}
    for i in range(500):
        custom_id = f"req-{i}"
        if i % 50 == 7:
            lines.append(chat_line(custom_id, f"UPSTREAM-400 {i}"))
            expected[custom_id] = 400
        elif i % 50 == 13:
            lines.append(chat_line(custom_id, f"UPSTREAM-500 {i}"))
            expected[custom_id] = 502
        elif i % 100 == 21:  # no messages: Portway's own 400, no upstream call
            lines.append({**chat_line(custom_id, ""), "body": {"model": MODEL}})
            expected[custom_id] = 400
        else:
            lines.append(chat_line(custom_id, f"line {i}"))
            expected[custom_id] = 200
    file_id = upload(client, jsonl(lines))

    created = client.batches.create(
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"project": "nightly"},
    )
    assert_matches("Batch", created.model_dump(exclude_unset=True))
    assert created.status in ("validating", "in_progress")
    assert created.metadata == {"project": "nightly"}

    batch = wait_for(client, created.id)
    assert batch.status == "completed", batch
    assert_matches("Batch", client.batches.retrieve(batch.id).model_dump(exclude_unset=True))
    ok = sum(1 for status in expected.values() if status == 200)
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (500, ok)
    assert batch.request_counts.failed == 500 - ok
    assert batch.model == MODEL
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at
    assert batch.usage is not None and batch.usage.input_tokens == 7 * ok

    output = file_lines(client, batch.output_file_id)
    errors = file_lines(client, batch.error_file_id)
    # Each custom_id exactly once, in one of the two files.
    assert Counter(_custom_ids(output + errors)) == Counter(list(expected))
    for line in output + errors:
        assert set(line) == {"id", "custom_id", "response", "error"}
        assert line["id"].startswith("batch_req_") and line["error"] is None
        response = line["response"]
        assert response["status_code"] == expected[line["custom_id"]], line
        assert response["request_id"].startswith("req_")
    for line in output:
        body = line["response"]["body"]
        assert_matches("CreateChatCompletionResponse", body)
        number = line["custom_id"].removeprefix("req-")
        assert body["choices"][0]["message"]["content"] == f"echo: line {number}"
    for line in errors:
        error = line["response"]["body"]["error"]
        assert set(error) == {"message", "type", "param", "code"}
        if expected[line["custom_id"]] == 502:
            assert error["type"] == "upstream_error"
        else:
            assert error["type"] == "invalid_request_error"
    # Output files are Portway files of the batch's owner.
    assert client.files.retrieve(batch.output_file_id).purpose == "batch_output"  # type: ignore[arg-type]
    # One upstream call per line that reached it, none for Portway's own 400s.
    calls = Counter(last_user_text(request.body) for request in fake_openai.requests)
    assert all(count == 1 for count in calls.values())
    assert len(calls) == sum(1 for i in range(500) if i % 100 != 21)

    listed = client.batches.list()
    assert_matches("ListBatchesResponse", listed.model_dump(exclude_unset=True))
    assert batch.id in [item.id for item in listed.data]


def test_an_embeddings_batch(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    lines = [
        {
            "custom_id": f"emb-{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": MODEL, "input": f"text {i}"},
        }
        for i in range(5)
    ]
    batch = client.batches.create(
        input_file_id=upload(client, jsonl(lines)),
        endpoint="/v1/embeddings",
        completion_window="24h",
    )
    batch = wait_for(client, batch.id)
    assert batch.status == "completed" and batch.error_file_id is None
    output = file_lines(client, batch.output_file_id)
    assert sorted(_custom_ids(output)) == [f"emb-{i}" for i in range(5)]
    for line in output:
        assert_matches("CreateEmbeddingResponse", line["response"]["body"])


def test_a_text_completions_batch(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    lines = [
        {
            "custom_id": f"txt-{i}",
            "method": "POST",
            "url": "/v1/completions",
            "body": {"model": MODEL, "prompt": f"line {i}", "max_tokens": 5},
        }
        for i in range(4)
    ]
    # best_of below n is refused per line, as the endpoint refuses it.
    lines.append(
        {
            "custom_id": "txt-bad",
            "method": "POST",
            "url": "/v1/completions",
            "body": {"model": MODEL, "prompt": "x", "n": 2, "best_of": 1},
        }
    )
    batch = client.batches.create(
        input_file_id=upload(client, jsonl(lines)),
        endpoint="/v1/completions",
        completion_window="24h",
    )
    batch = wait_for(client, batch.id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (4, 1)
    output = {line["custom_id"]: line for line in file_lines(client, batch.output_file_id)}
    for i in range(4):
        body = output[f"txt-{i}"]["response"]["body"]
        assert_matches("CreateCompletionResponse", body)
        assert body["choices"][0]["text"] == f" completed: line {i}"
    errors = file_lines(client, batch.error_file_id)
    assert [line["custom_id"] for line in errors] == ["txt-bad"]
    assert errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["param"] == "best_of"
    upstream_prompts = sorted(
        r.body["prompt"] for r in fake_openai.requests if r.path == "/v1/completions"
    )
    assert upstream_prompts == [f"line {i}" for i in range(4)]


def test_a_cancelled_batch_stops(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.default = Reply(delay=0.2)
    lines = [chat_line(f"c-{i}", f"slow {i}") for i in range(200)]
    batch = client.batches.create(
        input_file_id=upload(client, jsonl(lines)),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    wait_for(client, batch.id, lambda b: b.request_counts and b.request_counts.completed >= 10)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    assert_matches("Batch", cancelling.model_dump(exclude_unset=True))
    cancelled = wait_for(client, batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at and cancelled.cancelling_at
    calls = len(fake_openai.requests)
    time.sleep(0.6)  # longer than a line takes: nothing else starts
    assert len(fake_openai.requests) == calls < 200
    assert cancelled.request_counts is not None
    done = cancelled.request_counts.completed
    output = file_lines(client, cancelled.output_file_id)
    assert len(output) == len(set(_custom_ids(output))) == done
    assert 10 <= done < 200
    # Cancelling again is harmless; a finished batch cannot be cancelled.
    assert client.batches.cancel(batch.id).status == "cancelled"


def test_a_finished_batch_cannot_be_cancelled(client: openai.OpenAI) -> None:
    batch = client.batches.create(
        input_file_id=upload(client, jsonl([chat_line("one", "hi")])),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert wait_for(client, batch.id).status == "completed"
    with pytest.raises(openai.BadRequestError) as raised:
        client.batches.cancel(batch.id)
    assert "Cannot cancel a batch with status 'completed'" in raised.value.message


def test_a_revoked_key_fails_its_batch(gateway: PortwayServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.default = Reply(delay=0.1)
    key_id, key = issue_key(gateway.url, MASTER, team="night-shift")
    _, colleague = issue_key(gateway.url, MASTER, team="night-shift")  # same tenant
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    watcher = openai.OpenAI(base_url=gateway.base_url, api_key=colleague, max_retries=0)
    lines = [chat_line(f"v-{i}", f"revoked {i}") for i in range(200)]
    batch = client.batches.create(
        input_file_id=upload(client, jsonl(lines)),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    wait_for(watcher, batch.id, lambda b: b.request_counts and b.request_counts.completed >= 5)
    revoked = httpx.post(
        f"{gateway.base_url}/admin/keys/{key_id}/revoke",
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert revoked.status_code == 200, revoked.text

    failed = wait_for(watcher, batch.id)
    assert failed.status == "failed" and failed.errors and failed.errors.data
    assert failed.errors.data[0].code == "revoked_api_key"
    assert failed.request_counts is not None and failed.request_counts.completed < 200
    # What finished before the revocation is kept.
    kept = file_lines(watcher, failed.output_file_id)
    assert len(kept) == failed.request_counts.completed
    assert len(fake_openai.requests) < 200


def test_another_key_sees_none_of_it(gateway: PortwayServer, client: openai.OpenAI) -> None:
    file_id = upload(client, jsonl([chat_line("mine", "hi")]))
    batch = client.batches.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    other = openai.OpenAI(
        base_url=gateway.base_url, api_key=new_key(gateway.url, MASTER), max_retries=0
    )
    with pytest.raises(openai.NotFoundError):
        other.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        other.batches.cancel(batch.id)
    assert batch.id not in [item.id for item in other.batches.list().data]
    with pytest.raises(openai.NotFoundError):
        other.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert wait_for(client, batch.id).status == "completed"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"endpoint": "/v1/moderations"}, "endpoint"),
        ({"completion_window": "1h"}, "completion_window"),
        ({"input_file_id": "file-missing"}, "input_file_id"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k"),
    ],
)
def test_wrong_parameters_are_400s(
    gateway: PortwayServer, client: openai.OpenAI, fields: dict[str, Any], param: str
) -> None:
    body = {
        "input_file_id": upload(client, jsonl([chat_line("a", "hi")])),
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **fields,
    }
    response = httpx.post(
        f"{gateway.base_url}/batches",
        json=body,
        headers={"authorization": f"Bearer {client.api_key}"},
    )
    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]["param"] == param
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_an_input_file_must_have_purpose_batch(client: openai.OpenAI) -> None:
    file_id = upload(client, jsonl([chat_line("a", "hi")]), purpose="assistants")
    with pytest.raises(openai.BadRequestError) as raised:
        client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert "purpose 'batch'" in raised.value.message


def test_a_bad_input_file_fails_the_batch_with_its_errors(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    good = chat_line("good", "hi")
    content = b"\n".join(
        [
            jsonl([good]).strip(),
            b"{not json",
            jsonl([chat_line("good", "again")]).strip(),  # a duplicate custom_id
            jsonl([{**chat_line("get", "hi"), "method": "GET"}]).strip(),
            jsonl([{**chat_line("elsewhere", "hi"), "url": "/v1/embeddings"}]).strip(),
            jsonl([{"method": "POST", "url": "/v1/chat/completions", "body": {}}]).strip(),
            b"",
        ]
    )
    batch = client.batches.create(
        input_file_id=upload(client, content),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    failed = wait_for(client, batch.id)
    assert failed.status == "failed" and failed.failed_at
    assert_matches("Batch", failed.model_dump(exclude_unset=True))
    assert failed.errors is not None
    found = [(error.line, error.code, error.param) for error in failed.errors.data or []]
    assert found == [
        (2, "invalid_json_line", None),
        (3, "duplicate_custom_id", "custom_id"),
        (4, "invalid_method", "method"),
        (5, "mismatched_endpoint", "url"),
        (6, "missing_required_parameter", "custom_id"),
    ]
    assert fake_openai.requests == []  # not one line ran


def _response_line(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/responses", "body": body}


def test_responses_lines_are_served_as_responses_at_the_batch_discount(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = Reply()
    lines = [
        *(
            _response_line(
                f"r-{i}", {"model": MODEL, "input": f"line {i}", "instructions": "Be brief."}
            )
            for i in range(3)
        ),
        _response_line("no-input", {"model": MODEL}),
        _response_line("no-model", {"model": "nope-model", "input": "hi"}),
        _response_line("streamed", {"model": MODEL, "input": "hi", "stream": True}),
        _response_line("bad-type", {"model": MODEL, "input": 5}),
    ]
    batch = client.batches.create(
        input_file_id=upload(client, jsonl(lines)),
        endpoint="/v1/responses",
        completion_window="24h",
    )
    done = wait_for(client, batch.id)
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 4)
    assert done.usage is not None
    assert (done.usage.input_tokens, done.usage.output_tokens) == (3 * 7, 3 * 5)
    outputs = {line["custom_id"]: line for line in file_lines(client, done.output_file_id)}
    assert sorted(outputs) == ["r-0", "r-1", "r-2"]
    for i in range(3):
        line = outputs[f"r-{i}"]
        assert line["error"] is None and line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert_matches("Response", body)
        assert body["status"] == "completed" and body["instructions"] == "Be brief."
        assert body["output"][0]["content"][0]["text"] == f"echo: line {i}"
        assert body["usage"]["total_tokens"] == 12
        # Stored (the default): retrievable and chainable like any response of the key.
        assert client.responses.retrieve(body["id"]).output_text == f"echo: line {i}"
    errors = {
        line["custom_id"]: line["response"] for line in file_lines(client, done.error_file_id)
    }
    found = {
        custom_id: (response["status_code"], response["body"]["error"]["param"])
        for custom_id, response in errors.items()
    }
    assert found == {
        "no-input": (400, "input"),
        "no-model": (404, "model"),
        "streamed": (400, "stream"),
        "bad-type": (400, "input"),
    }
    for response in errors.values():
        assert_matches("ErrorResponse", response["body"])
    assert errors["no-model"]["body"]["error"]["code"] == "model_not_found"
    assert len(fake_openai.requests) == 3
    ledger = httpx.get(
        f"{gateway.base_url}/usage",
        params={"group_by": "endpoint"},
        headers={"authorization": f"Bearer {client.api_key}"},
    )
    rows = {row["endpoint"]: row for row in ledger.json()["data"]}
    assert set(rows) == {"batches"}
    # 7 prompt tokens at $1/M + 5 completion tokens at $2/M = $0.000017 a call; half price.
    assert rows["batches"]["requests"] == 3
    assert rows["batches"]["cost"] == pytest.approx(3 * 0.000017 * 0.5)


def test_batch_lines_are_billed_at_the_discount(
    gateway: PortwayServer, client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "now"}])
    batch = client.batches.create(
        input_file_id=upload(client, jsonl([chat_line(f"d-{i}", "hi") for i in range(4)])),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert wait_for(client, batch.id).status == "completed"
    response = httpx.get(
        f"{gateway.base_url}/usage",
        params={"group_by": "endpoint"},
        headers={"authorization": f"Bearer {client.api_key}"},
    )
    rows = {row["endpoint"]: row for row in response.json()["data"]}
    interactive, batched = rows["chat.completions"], rows["batches"]
    assert (interactive["requests"], batched["requests"]) == (1, 4)
    # 7 prompt tokens at $1/M + 5 completion tokens at $2/M = $0.000017 a call; half in batches.
    assert interactive["cost"] == pytest.approx(0.000017)
    assert batched["cost"] == pytest.approx(4 * 0.000017 * 0.5)


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "param"),
    [
        ("POST", "/batches", b"{not json", 400, None),
        ("POST", "/batches", b'{"endpoint": "/v1/chat/completions"}', 400, "input_file_id"),
        ("POST", "/batches", b'{"input_file_id": 5, "endpoint": "x"}', 400, "input_file_id"),
        ("POST", "/batches", b"[]", 400, None),
        ("GET", "/batches?limit=0", b"", 400, "limit"),
        ("GET", "/batches?limit=101", b"", 400, "limit"),
        ("GET", "/batches/batch_nope", b"", 404, "batch_id"),
        ("POST", "/batches/batch_nope/cancel", b"", 404, "batch_id"),
    ],
)
def test_bad_requests_get_openai_errors(
    client: openai.OpenAI,
    method: str,
    path: str,
    content: bytes,
    status: int,
    param: str | None,
) -> None:
    response = httpx.request(
        method,
        f"{client.base_url}".rstrip("/") + path,
        content=content,
        headers={"authorization": f"Bearer {client.api_key}", "content-type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert_matches("ErrorResponse", response.json())
    assert response.json()["error"]["param"] == param
