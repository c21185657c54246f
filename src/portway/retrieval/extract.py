"""Text extraction for indexing: text-like files only, chosen by extension, else sniffed.

Supported: plain text and markup (txt, md, rst, tex, csv, tsv, json, jsonl, yaml, toml,
xml, log, ...), source code (py, js, ts, java, c, cpp, go, rs, rb, php, sh, sql, ...) and
HTML (tags, scripts and styles stripped). A file with another extension is indexed when
it decodes as UTF-8 text. PDF, Office documents, images and other binaries fail with
``unsupported_file``: no pure-Python extractor ships with Portway.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import PurePosixPath


class ExtractionError(Exception):
    """The file cannot be indexed; ``code`` is the vector-store file's ``last_error.code``."""

    code = "invalid_file"


class UnsupportedFileError(ExtractionError):
    code = "unsupported_file"


_TEXT_EXTENSIONS = frozenset(
    """txt text md markdown rst adoc tex csv tsv json jsonl ndjson yaml yml toml ini cfg conf
    xml log py pyi js mjs cjs ts tsx jsx java kt scala c h cc cpp cxx hpp hh cs go rs rb php
    pl pm swift m mm r lua sh bash zsh ps1 bat sql css scss less vue svelte proto graphql
    dockerfile makefile gradle properties env srt vtt""".split()  # noqa: SIM905 (a word list reads best as text)
)
_HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF files are not supported: Portway has no PDF text extractor installed"),
    (b"PK\x03\x04", "zip-based documents (docx, xlsx, pptx, zip) are not supported"),
    (b"\x89PNG", "images are not supported for file search"),
    (b"\xff\xd8\xff", "images are not supported for file search"),
    (b"GIF8", "images are not supported for file search"),
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Linear: a run of n newlines is matched once from its start (no backtracking into it).
_BLANK_LINES = re.compile(r"\n{3,}")


def _decode(data: bytes, *, lenient: bool) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data[:8192]:
        raise UnsupportedFileError("the file looks binary (it contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if not lenient:
            raise UnsupportedFileError("the file is neither UTF-8 text nor a known type") from None
        # A known text type in a legacy encoding: cp1252 covers most of it, latin-1 the rest.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


class _HTMLText(HTMLParser):
    _SKIPPED = frozenset({"script", "style", "noscript", "template", "head"})
    _BLOCKS = frozenset(
        """p div br li ul ol tr table section article header footer h1 h2 h3 h4 h5 h6 pre
        blockquote dt dd hr title""".split()  # noqa: SIM905 (a word list reads best as text)
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _plain(data: bytes) -> str:
    return _decode(data, lenient=True)


def _html(data: bytes) -> str:
    parser = _HTMLText()
    parser.feed(_decode(data, lenient=True))
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(lines)


def _sniffed(data: bytes) -> str:
    return _decode(data, lenient=False)


_EXTRACTORS: dict[str, Callable[[bytes], str]] = {
    **dict.fromkeys(_TEXT_EXTENSIONS, _plain),
    **dict.fromkeys(_HTML_EXTENSIONS, _html),
}


def _extension(filename: str) -> str:
    path = PurePosixPath(filename.replace("\\", "/"))
    suffix = path.suffix.lower().lstrip(".")
    return suffix or path.name.lower()


def extract_text(filename: str, data: bytes) -> str:
    """The indexable text of a file; raises ``ExtractionError`` (with its ``code``)."""
    for signature, reason in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise UnsupportedFileError(reason)
    extractor = _EXTRACTORS.get(_extension(filename), _sniffed)
    text = extractor(data).replace("\r\n", "\n").replace("\r", "\n")
    # Per line, not a `[ \t]+\n` regex: that rescans a long blank run from every position.
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if not text:
        raise ExtractionError("the file contains no text")
    return text
