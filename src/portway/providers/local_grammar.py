"""JSON schema → GBNF grammar for local models, bounded and checked before llama.cpp sees it.

Contract: ``schema_grammar(schema, param, limits)`` returns a grammar or raises
``InvalidRequestError`` naming ``param``. The schema is checked first (its size,
nesting, string lengths, item counts, property counts, regex repetitions) so the
converter never builds something huge, then the grammar itself is checked (size,
group nesting). Why: llama.cpp's parser rejects some grammars (a ``maxLength`` of a few
thousand expands into thousands of nested optional groups, past its repetition limit)
and llama-cpp-python then adds the NULL sampler to the chain, which segfaults the
process at the first token. ``grammar_rejection`` is the last gate: it asks llama.cpp
to parse the grammar and frees the result, so only grammars it accepted reach
generation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from portway.errors import InvalidRequestError

# `{m}`, `{m,}` and `{m,n}` in a JSON-schema `pattern`: linear (digits, no nesting).
_QUANTIFIER = re.compile(r"\{(\d+)(?:,(\d*))?\}")


@dataclass(frozen=True, slots=True)
class GrammarLimits:
    """What a schema may ask of the grammar converter and of llama.cpp's parser."""

    # maxLength/minLength, and `{m,n}` in patterns: each character is a nested group.
    max_string_length: int = 1000
    # maxItems/minItems: each item is a nested group too.
    max_items: int = 1000
    max_properties: int = 64
    max_depth: int = 32
    max_schema_bytes: int = 64 * 1024
    max_grammar_bytes: int = 256 * 1024
    # Nested groups in the grammar (llama.cpp parses them recursively).
    max_grammar_nesting: int = 1000


def _nodes(schema: Any, depth: int = 0) -> Iterator[tuple[dict[str, Any], int]]:
    """Every dict in the schema with its nesting depth (iteratively: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(schema, depth)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            yield node, level
            stack.extend((value, level + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, level + 1) for value in node)


def _bound(node: dict[str, Any], low: str, high: str, limit: int, param: str) -> None:
    values = {key: node[key] for key in (low, high) if key in node}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequestError(
                f"`{key}` must be a non-negative integer, not {value!r}.", param=param
            )
        if value > limit:
            raise InvalidRequestError(
                f"`{key}: {value}` is more than a local model can enforce (at most {limit}).",
                param=param,
            )
    if low in values and high in values and values[low] > values[high]:
        raise InvalidRequestError(f"`{low}` is larger than `{high}`.", param=param)


def check_schema(schema: Any, param: str, limits: GrammarLimits) -> None:
    """Raise ``InvalidRequestError`` when the schema would build a grammar beyond the limits."""
    if not isinstance(schema, dict):
        raise InvalidRequestError("The JSON schema must be an object.", param=param)
    size = len(json.dumps(schema))
    if size > limits.max_schema_bytes:
        raise InvalidRequestError(
            f"The JSON schema is {size} bytes; a local model enforces at most "
            f"{limits.max_schema_bytes}.",
            param=param,
        )
    for node, depth in _nodes(schema):
        if depth > limits.max_depth:
            raise InvalidRequestError(
                f"The JSON schema nests deeper than {limits.max_depth} levels.", param=param
            )
        _bound(node, "minLength", "maxLength", limits.max_string_length, param)
        _bound(node, "minItems", "maxItems", limits.max_items, param)
        properties = node.get("properties")
        if isinstance(properties, dict) and len(properties) > limits.max_properties:
            raise InvalidRequestError(
                f"An object in the JSON schema has {len(properties)} properties; a local "
                f"model enforces at most {limits.max_properties}.",
                param=param,
            )
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            for match in _QUANTIFIER.finditer(pattern):
                counts = [int(group) for group in match.groups() if group]
                if max(counts) > limits.max_string_length:
                    raise InvalidRequestError(
                        f"The pattern repetition `{match.group(0)}` is more than a local "
                        f"model can enforce (at most {limits.max_string_length}).",
                        param=param,
                    )


def _group_nesting(grammar: str) -> int:
    """The deepest nesting of ``( )`` groups, outside string literals and char classes."""
    depth = deepest = 0
    closing: str | None = None
    escaped = False
    for char in grammar:
        if closing is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == closing:
                closing = None
        elif char == '"':
            closing = '"'
        elif char == "[":
            closing = "]"
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest


def check_grammar(grammar: str, param: str, limits: GrammarLimits) -> str:
    """The grammar, once its size and nesting are within what llama.cpp parses safely."""
    if len(grammar) > limits.max_grammar_bytes:
        raise InvalidRequestError(
            f"The JSON schema needs a {len(grammar)}-byte grammar; a local model enforces "
            f"at most {limits.max_grammar_bytes} bytes.",
            param=param,
        )
    nesting = _group_nesting(grammar)
    if nesting > limits.max_grammar_nesting:
        raise InvalidRequestError(
            f"The JSON schema needs a grammar nested {nesting} groups deep; a local model "
            f"enforces at most {limits.max_grammar_nesting}.",
            param=param,
        )
    return grammar


def schema_grammar(schema: Any, param: str, limits: GrammarLimits) -> str:
    """The GBNF grammar of a client's JSON schema, bounded (else a 400 naming ``param``)."""
    check_schema(schema, param, limits)
    try:
        grammar = str(json_schema_to_gbnf(json.dumps(schema)))
    # llama.cpp's converter signals unsupported schemas with assert as well as exceptions
    except (
        AssertionError,
        ValueError,
        KeyError,
        TypeError,
        NotImplementedError,
        RecursionError,
    ) as exc:
        raise InvalidRequestError(
            f"This JSON schema cannot be enforced on a local model: {exc}", param=param
        ) from None
    return check_grammar(grammar, param, limits)


def grammar_rejection(vocab: Any, grammar: str) -> bool:
    """True when llama.cpp's parser rejects the grammar (blocking: call from a thread)."""
    from llama_cpp import llama_cpp as ll

    sampler = ll.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
    if not sampler:
        return True
    ll.llama_sampler_free(sampler)
    return False
