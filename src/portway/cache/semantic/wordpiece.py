"""BERT's uncased WordPiece tokenizer in plain Python (the ``BertTokenizer`` of the model card).

Contract: ``WordPieceTokenizer(vocab).encode(text, max_length)`` returns the token ids
``[CLS] ... [SEP]`` that Hugging Face's ``BertTokenizer`` (lowercase, accents stripped,
Chinese characters split, punctuation split, greedy longest-match word pieces)
produces for the same text, truncated to ``max_length`` ids. No dependency, no network.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from pathlib import Path

MAX_CHARS_PER_WORD = 100


def load_vocab(path: Path) -> dict[str, int]:
    """``vocab.txt``: one token per line, the id is the line number."""
    with path.open(encoding="utf-8") as lines:
        return {line.rstrip("\n"): index for index, line in enumerate(lines)}


def _is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    # BERT counts every non-alphanumeric ASCII symbol as punctuation, e.g. "^", "$", "`".
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def normalize(text: str) -> str:
    """Clean, pad CJK characters, lowercase and strip accents, as ``BertNormalizer`` does."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code == 0 or code == 0xFFFD or _is_control(char):
            continue
        if _is_whitespace(char):
            out.append(" ")
        elif _is_cjk(code):
            out.append(f" {char} ")
        else:
            out.append(char)
    decomposed = unicodedata.normalize("NFD", "".join(out).lower())
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


def pre_tokenize(text: str) -> list[str]:
    """Split on whitespace, then make every punctuation character a word of its own."""
    words: list[str] = []
    for chunk in text.split():
        current: list[str] = []
        for char in chunk:
            if _is_punctuation(char):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
    return words


class WordPieceTokenizer:
    """Text → token ids for an uncased BERT vocabulary."""

    def __init__(self, vocab: Mapping[str, int]) -> None:
        self._vocab = vocab
        self._unk = vocab["[UNK]"]
        self._cls = vocab["[CLS]"]
        self._sep = vocab["[SEP]"]

    def _word_ids(self, word: str) -> list[int]:
        if len(word) > MAX_CHARS_PER_WORD:
            return [self._unk]
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found: int | None = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self._vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self._unk]
            ids.append(found)
            start = end
        return ids

    def encode(self, text: str, max_length: int) -> list[int]:
        """``[CLS] pieces... [SEP]`` with at most ``max_length`` ids in all."""
        budget = max_length - 2
        ids: list[int] = []
        for word in pre_tokenize(normalize(text)):
            ids.extend(self._word_ids(word))
            if len(ids) >= budget:
                del ids[budget:]
                break
        return [self._cls, *ids, self._sep]
