"""Token-window chunking, as OpenAI's ``static`` strategy: windows of ``size`` tokens that
overlap by ``overlap`` tokens (``auto`` = the configured defaults, 800/400 out of the box).

Tokens are counted with ``o200k_base`` from the accounting tokenizer's BPE files
(``accounting.encodings``), so chunk sizes match what OpenAI's newer models see. A window
boundary can fall inside a multi-byte character; the partial character is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import tiktoken

from portway.accounting.encodings import load_encoding

CHUNKING_ENCODING = "o200k_base"


@dataclass(frozen=True, slots=True)
class Chunking:
    size: int
    overlap: int

    def __post_init__(self) -> None:
        if self.size < 1 or self.overlap < 0 or self.overlap * 2 > self.size:
            raise ValueError(f"invalid chunking {self.size}/{self.overlap}")


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str
    tokens: int


def chunking_encoding() -> tiktoken.Encoding:
    """The BPE used for chunking (built once per process; blocking: call from a thread)."""
    return load_encoding(CHUNKING_ENCODING)


def chunk_text(text: str, chunking: Chunking, encoding: tiktoken.Encoding) -> list[TextChunk]:
    """Split ``text`` into overlapping token windows (blocking: call from a thread)."""
    tokens = encoding.encode(text, disallowed_special=())
    step = chunking.size - chunking.overlap
    chunks: list[TextChunk] = []
    start = 0
    while start < len(tokens):
        window = tokens[start : start + chunking.size]
        piece = encoding.decode_bytes(window).decode("utf-8", errors="ignore").strip()
        if piece:
            chunks.append(TextChunk(piece, len(window)))
        if start + chunking.size >= len(tokens):
            break
        start += step
    return chunks
