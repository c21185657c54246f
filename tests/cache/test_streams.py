"""Stream assembly and replay round-trip: what was streamed is what is replayed."""

from __future__ import annotations

from typing import Any

from portway.cache.entry import CachedCompletion, from_completion
from portway.cache.streams import StreamAssembler, replay_chunks
from tests.openapi import assert_matches


def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": choices,
        **extra,
    }


def delta(index: int, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish}


def two_choice_stream() -> list[dict[str, Any]]:
    return [
        chunk([delta(0, role="assistant", content="")], system_fingerprint="fp"),
        chunk([delta(1, role="assistant", content="")]),
        chunk([delta(0, content="Hel")]),
        chunk(
            [
                delta(
                    1,
                    tool_calls=[
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ],
                )
            ]
        ),
        chunk([delta(0, content="lo")]),
        chunk([delta(1, tool_calls=[{"index": 0, "function": {"arguments": '{"a":'}}])]),
        chunk(
            [
                delta(
                    1,
                    tool_calls=[
                        {
                            "index": 1,
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "g", "arguments": "{}"},
                        }
                    ],
                )
            ]
        ),
        chunk([delta(1, tool_calls=[{"index": 0, "function": {"arguments": " 1}"}}])]),
        chunk([delta(0, "stop")]),
        chunk([delta(1, "tool_calls")]),
        chunk([], usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
    ]


def test_assembler_merges_choices_and_tool_calls() -> None:
    assembler = StreamAssembler()
    for item in two_choice_stream():
        assembler.add(item)  # type: ignore[arg-type]
    entry = assembler.result(now=100.0, ttl=10)
    assert entry is not None and entry.expires_at == 110.0
    first, second = entry.choices
    assert first["message"] == {"role": "assistant", "content": "Hello", "refusal": None}
    assert second["message"]["content"] is None
    assert [(c["id"], c["function"]) for c in second["message"]["tool_calls"]] == [
        ("call_1", {"name": "f", "arguments": '{"a": 1}'}),
        ("call_2", {"name": "g", "arguments": "{}"}),
    ]
    assert second["finish_reason"] == "tool_calls"
    assert entry.usage == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert entry.system_fingerprint == "fp"


def test_unfinished_stream_yields_nothing() -> None:
    assembler = StreamAssembler()
    for item in two_choice_stream()[:-3]:
        assembler.add(item)  # type: ignore[arg-type]
    assert assembler.result(now=0, ttl=1) is None
    assert StreamAssembler().result(now=0, ttl=1) is None


def test_replay_then_assemble_is_the_identity() -> None:
    assembler = StreamAssembler()
    for item in two_choice_stream():
        assembler.add(item)  # type: ignore[arg-type]
    entry = assembler.result(now=0, ttl=60)
    assert entry is not None
    again = StreamAssembler()
    for item in replay_chunks(entry, "m", include_usage=True):
        assert_matches("CreateChatCompletionStreamResponse", item)
        again.add(item)
    replayed = again.result(now=0, ttl=60)
    assert replayed is not None and replayed.choices == entry.choices
    assert replayed.usage is not None
    assert replayed.usage["prompt_tokens_details"] == {"cached_tokens": 3}


def test_entry_bytes_round_trip_and_fresh_identity() -> None:
    completion = {
        "id": "chatcmpl-original",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-name",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }
    entry = from_completion(completion, now=0, ttl=5)  # type: ignore[arg-type]
    assert entry is not None
    decoded = CachedCompletion.from_bytes(entry.to_bytes())
    assert decoded == entry
    fresh = entry.to_completion("public-name")
    assert fresh["id"] != "chatcmpl-original" and fresh["model"] == "public-name"
    assert fresh["usage"]["prompt_tokens_details"] == {"cached_tokens": 2}
    assert entry.usage == completion["usage"]  # the stored usage is not modified
    assert_matches("CreateChatCompletionResponse", fresh)
    unfinished = {**completion, "choices": [{**completion["choices"][0], "finish_reason": None}]}
    assert from_completion(unfinished, now=0, ttl=5) is None  # type: ignore[arg-type]
