"""Random chat conversations with tool calls (hypothesis strategies) for context tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

WORDS = ("alpha", "beta", "gamma", "delta", "the", "quick", "fox", "42", "tool", "weather")


def _text(draw: st.DrawFn, most: int = 40) -> str:
    return " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=most)))


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A system prompt (maybe), then user/assistant/tool-call turns, ending on a user turn
    or on tool results (an agent loop in progress)."""
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": _text(draw)})
    calls = 0
    for _turn in range(draw(st.integers(min_value=0, max_value=25))):
        kind = draw(st.sampled_from(("user", "assistant", "tools", "developer")))
        if kind == "user":
            messages.append({"role": "user", "content": _text(draw)})
        elif kind == "developer":
            messages.append({"role": "developer", "content": _text(draw, 10)})
        elif kind == "assistant":
            messages.append({"role": "assistant", "content": _text(draw)})
        else:
            ids = [f"call_{calls + i}" for i in range(draw(st.integers(1, 3)))]
            calls += len(ids)
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": "x"}'},
                        }
                        for call_id in ids
                    ],
                }
            )
            messages.extend(
                {"role": "tool", "tool_call_id": call_id, "content": _text(draw)} for call_id in ids
            )
    if draw(st.booleans()) or not any(m["role"] == "user" for m in messages):
        messages.append({"role": "user", "content": _text(draw)})
    return messages
