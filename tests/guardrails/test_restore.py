"""Pseudonyms restored exactly across every chunk boundary (property: any split of the stream)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portway.guardrails.base import GuardSession
from portway.guardrails.pii import PiiGuardrail
from portway.guardrails.restore import MAX_PLACEHOLDER, StreamRestorer

PROMPT = "mail bob@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111"


def _session() -> tuple[GuardSession, str]:
    session = GuardSession()
    redacted = PiiGuardrail().check_input(PROMPT, "redact", session)
    return session, redacted


@given(cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12), noise=st.text())
def test_any_split_restores_exactly(cuts: list[int], noise: str) -> None:
    session, redacted = _session()
    answer = f"{noise}<{redacted}> <EMAIL_1><EMAIL_1"
    bounds = sorted({min(cut, len(answer)) for cut in cuts})
    pieces = [answer[a:b] for a, b in zip([0, *bounds], [*bounds, len(answer)], strict=True)]
    restorer = StreamRestorer(session)
    shown = "".join(restorer.feed("content", piece) for piece in pieces)
    shown += restorer.flush("content")
    assert shown == session.restore(answer)
    assert shown.endswith(f"<{PROMPT}> bob@example.com<EMAIL_1")


def test_only_a_possible_placeholder_is_held_back() -> None:
    session, _ = _session()
    restorer = StreamRestorer(session)
    assert restorer.feed("c", "a < b and x<y") == "a < b and x<y"
    assert restorer.feed("c", "see <EMA") == "see "
    assert restorer.feed("c", "IL_1> ok") == "bob@example.com ok"
    long_tail = "<" + "A" * MAX_PLACEHOLDER
    assert restorer.feed("c", long_tail) == long_tail  # too long to be a placeholder
