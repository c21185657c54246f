"""Every regular expression applied to client text finishes on adversarial input (fuzzed).

The audit (issue 9): routing rules' ``matches`` (operator patterns, client text) run on
RE2; keywords are escaped literals; retrieval's line clean-up is per line (no
``[ \\t]+\\n`` rescans); query terms, citation markers, file ids, glob escaping and the
grammar converter's quantifier scan are single-pass patterns. Each call runs in a forked
child that must finish: a catastrophic pattern never returns, so "finishes within a
generous limit" tells them apart without timing the code under test.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from portway.assistants.tools import annotations_for, renumber_markers
from portway.cache.backends.redis import glob_escape
from portway.errors import PortwayError
from portway.guardrails.base import GuardSession
from portway.guardrails.registry import GuardrailRegistry
from portway.guardrails.restore import StreamRestorer
from portway.providers.local_grammar import GrammarLimits, check_schema
from portway.retrieval.extract import ExtractionError, extract_text
from portway.retrieval.search import query_terms
from portway.routing.config import RuleCondition
from portway.routing.rules import Matches, keywords_condition

LIMIT_SECONDS = 20.0
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that make backtracking engines rescan: long runs, almost-matches, a bad tail.
UNITS = ["a", "aa", " \t", " ", "\t", "\n", "[1", "[", "a ", "é", "<a ", "\\", "*", "ab", "1"]
TAILS = ["", "!", "\n", "x", "]", " \n"]

adversarial = st.builds(
    lambda unit, count, tail: unit * count + tail,
    st.sampled_from(UNITS),
    st.integers(min_value=1_000, max_value=100_000),
    st.sampled_from(TAILS),
)
client_text = st.one_of(adversarial, st.text(max_size=2_000))


# Rejecting the input is an answer too; only hanging (or crashing) is not.
REJECTIONS = (ValueError, ExtractionError, PortwayError)


def _call(function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    with contextlib.suppress(*REJECTIONS):
        function(*args)


def finishes(function: Callable[..., Any], *args: Any, limit: float = LIMIT_SECONDS) -> None:
    """``function(*args)`` returns (or raises) in a child process within ``limit`` seconds."""
    child = multiprocessing.get_context("fork").Process(target=_call, args=(function, args))
    child.start()
    child.join(limit)
    if child.is_alive():
        child.kill()
        child.join()
        raise AssertionError(f"{function.__name__} did not finish on {args!r:.200}")
    assert child.exitcode == 0


# Patterns that backtrack catastrophically in Python's re; an operator may well write one.
EVIL_PATTERNS = [r"(a+)+$", r"(a|aa)*c", r"(.*a){12}x", r"(\w+\s?)+$", r"^(\s*\S*)*!$"]


def _search(pattern: str, text: str) -> None:
    Matches.build(pattern).pattern.search(text)


@pytest.mark.parametrize("pattern", EVIL_PATTERNS)
@FUZZ
@given(text=client_text)
@example(text="a" * 64 + "!")
def test_routing_rule_patterns_are_linear(pattern: str, text: str) -> None:
    finishes(_search, pattern, text)


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)b", r"(?<!x)y"])
def test_patterns_re2_cannot_run_are_config_errors(pattern: str) -> None:
    with pytest.raises(ValueError, match="RE2"):
        RuleCondition(matches=pattern)


def _keywords(text: str) -> None:
    keywords_condition(["prove", "a", "c++", "aa"]).pattern.search(text)


@FUZZ
@given(text=client_text)
def test_keyword_rules_finish(text: str) -> None:
    finishes(_keywords, text)


def _extract(text: str) -> None:
    extract_text("upload.txt", text.encode())


@FUZZ
@given(text=client_text)
@example(text=(" \t" * 100_000 + "x\n") * 2)
def test_extraction_finishes(text: str) -> None:
    finishes(_extract, text)


def _retrieval_and_citations(text: str) -> None:
    query_terms([text])
    renumber_markers(text, 2, 5)
    annotations_for(text, [], [])
    glob_escape(text)


@FUZZ
@given(text=client_text)
def test_query_terms_markers_and_globs_finish(text: str) -> None:
    finishes(_retrieval_and_citations, text)


def _schema_pattern(text: str) -> None:
    check_schema({"type": "string", "pattern": text}, "p", GrammarLimits())


@FUZZ
@given(text=st.one_of(client_text, st.builds(lambda n: "{" * n + "1" * n, st.integers(1, 30_000))))
def test_schema_pattern_scan_finishes(text: str) -> None:
    finishes(_schema_pattern, text)


def test_a_catastrophic_pattern_is_caught_by_this_harness() -> None:
    """The harness itself: Python's re on a catastrophic pattern does not finish."""
    import re

    with pytest.raises(AssertionError, match="did not finish"):
        # 2**60 steps: no limit is long enough, so a short one proves the point.
        finishes(re.compile(r"(a+)+$").search, "a" * 60 + "!", limit=1.0)


# Guardrails (issue 13) scan every prompt: their detectors are RE2 patterns with bounded
# gaps, and checksum/entropy checks run only on matches.
GUARDRAIL_UNITS = [
    "a@",
    "a.",
    "1-",
    "1 ",
    "sk-",
    "eyJa.",
    "ignore ",
    "::",
    "1.",
    "<A",
    "AKIA",
    "+1",
    "![a](",
    "[a](http://x",
    "<img src=",
    "https://a.b/",
    "born 1/",
    "bc1q",
    "0x0",
]
guardrail_text = st.one_of(
    client_text,
    st.builds(
        lambda unit, count, tail: unit * count + tail,
        st.sampled_from(GUARDRAIL_UNITS),
        st.integers(min_value=1_000, max_value=50_000),
        st.sampled_from(TAILS),
    ),
)


def _guardrails(text: str) -> None:
    registry = GuardrailRegistry()
    session = GuardSession()
    for name in ("pii", "secrets", "prompt_injection"):
        registry.get(name).check_input(text, "redact", session)
    sanitize = registry.get("sanitize").configured({"html": True})
    sanitize.check_output(text, "redact", session)
    sanitize.stream_hold(text)
    restorer = StreamRestorer(session)
    for start in range(0, len(text), 4096):
        restorer.feed("content", text[start : start + 4096])


@FUZZ
@given(text=guardrail_text)
@example(text="a@" * 50_000 + "!")
@example(text="ignore " * 20_000 + "x")
@example(text="https://a.b/" * 44_503)  # 20 s in the URL pattern's counted repetitions
def test_guardrail_detectors_finish(text: str) -> None:
    finishes(_guardrails, text)
