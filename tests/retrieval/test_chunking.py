"""Token-window chunking with overlap."""

from __future__ import annotations

import pytest

from portway.retrieval.chunking import Chunking, chunk_text, chunking_encoding


def test_windows_have_the_size_and_overlap_asked_for() -> None:
    encoding = chunking_encoding()
    text = " ".join(f"word{i}" for i in range(1000))
    chunks = chunk_text(text, Chunking(size=100, overlap=30), encoding)
    total = len(encoding.encode(text))
    assert all(chunk.tokens <= 100 for chunk in chunks)
    assert [chunk.tokens for chunk in chunks[:-1]] == [100] * (len(chunks) - 1)
    # Windows advance by size - overlap and the last one reaches the end.
    assert len(chunks) == 1 + -(-(total - 100) // 70)
    assert chunks[0].text.startswith("word0 ") and chunks[-1].text.endswith("word999")
    first_tail = encoding.decode(encoding.encode(chunks[0].text)[-30:]).strip()
    assert chunks[1].text.startswith(first_tail)


def test_short_text_is_one_chunk_and_multibyte_text_stays_valid() -> None:
    encoding = chunking_encoding()
    assert [c.text for c in chunk_text("tiny", Chunking(800, 400), encoding)] == ["tiny"]
    emoji = "🙂 ações " * 400
    chunks = chunk_text(emoji, Chunking(size=101, overlap=50), encoding)
    assert len(chunks) > 1
    assert all("\ufffd" not in chunk.text for chunk in chunks)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 51), (100, -1)])
def test_invalid_chunking_is_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        Chunking(size, overlap)
