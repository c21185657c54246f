"""Grammar bounds for local models: what the converter may build and what llama.cpp may parse."""

from __future__ import annotations

from typing import Any

import pytest

from portway.errors import InvalidRequestError
from portway.providers.local_grammar import (
    GrammarLimits,
    check_grammar,
    grammar_rejection,
    schema_grammar,
)

LIMITS = GrammarLimits()
PARAM = "response_format.json_schema.schema"


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "maxLength": 2000},
        {"type": "string", "minLength": 10**12},
        {"type": "string", "minLength": 5, "maxLength": 3},
        {"type": "string", "maxLength": -1},
        {"type": "string", "maxLength": "9"},
        {"type": "array", "items": {"type": "integer"}, "maxItems": 10**9},
        {"type": "string", "pattern": "^(ab){2,99999999}$"},
        {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(500)}},
        {"enum": ["x" * 1000] * 100},
        nested(200),
        [],
    ],
    ids=[
        "long-string",
        "huge-min",
        "min-over-max",
        "negative",
        "not-int",
        "huge-items",
        "pattern-repeat",
        "many-properties",
        "big-schema",
        "deep",
        "not-object",
    ],
)
def test_schemas_beyond_the_limits_are_400_naming_the_param(schema: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        schema_grammar(schema, PARAM, LIMITS)
    assert caught.value.param == PARAM


def test_the_largest_allowed_lengths_convert() -> None:
    grammar = schema_grammar(
        {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": LIMITS.max_string_length},
                "items": {"type": "array", "maxItems": LIMITS.max_items},
            },
        },
        PARAM,
        LIMITS,
    )
    assert "root ::=" in grammar


def test_grammar_nesting_ignores_literals_and_classes() -> None:
    limits = GrammarLimits(max_grammar_nesting=2)
    assert check_grammar('root ::= ((x)) "(((" [(((] ")))"', PARAM, limits)
    with pytest.raises(InvalidRequestError, match="nested 3 groups"):
        check_grammar('root ::= (((x))) "\\"(("', PARAM, limits)


def test_oversized_grammar_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="grammar"):
        check_grammar("root ::= " + '"a" ' * 100_000, PARAM, LIMITS)


def test_llama_cpp_parser_is_asked_without_crashing() -> None:
    """The last gate: llama.cpp's own parser, whose NULL result is checked (not sampled)."""
    from llama_cpp import Llama

    from portway.providers.local import default_model_path

    vocab_only = Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)
    vocab = vocab_only._model.vocab
    assert not grammar_rejection(
        vocab, schema_grammar({"type": "string", "maxLength": 1000}, PARAM, LIMITS)
    )
    assert grammar_rejection(vocab, 'root ::= "a"{2500}')  # beyond its repetition limit
    assert grammar_rejection(vocab, "root ::= undefined-rule")
    assert grammar_rejection(vocab, 'root ::= root "a"')  # left recursion
