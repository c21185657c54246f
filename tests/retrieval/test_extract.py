"""Text extraction: text-like files are read, binaries are refused with a clear code."""

from __future__ import annotations

import pytest

from portway.retrieval.extract import ExtractionError, UnsupportedFileError, extract_text


def test_plain_text_and_code_are_read_as_is() -> None:
    assert extract_text("a.md", b"# Title\r\n\r\n\r\n\r\nBody  \n") == "# Title\n\nBody"
    assert extract_text("x.py", b"def f():\n    return 1\n") == "def f():\n    return 1"
    assert extract_text("d.json", b'{"k": "v"}') == '{"k": "v"}'


def test_html_is_stripped_of_tags_scripts_and_styles() -> None:
    html = b"""<html><head><title>T</title><style>p{}</style></head>
    <body><h1>Refunds</h1><script>alert(1)</script><p>Paid in <b>5</b>&nbsp;days &amp; more.</p>
    </body></html>"""
    text = extract_text("page.html", html)
    assert "Refunds" in text and "Paid in 5 days & more." in text
    assert "alert" not in text and "p{}" not in text and "<" not in text


def test_legacy_encodings_and_boms() -> None:
    assert extract_text("a.txt", "café".encode("cp1252")) == "café"
    assert extract_text("a.txt", "hello".encode("utf-16")) == "hello"
    assert extract_text("a.txt", b"\xef\xbb\xbfbom") == "bom"


def test_unknown_extensions_are_sniffed() -> None:
    assert extract_text("README", b"just text") == "just text"
    assert extract_text("data.weird", "ünïcode".encode()) == "ünïcode"
    with pytest.raises(UnsupportedFileError):
        extract_text("blob.bin", b"\x00\x01\x02binary")
    with pytest.raises(UnsupportedFileError):
        extract_text("latin.weird", "café".encode("latin-1"))


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("doc.pdf", b"%PDF-1.7 ...", "PDF"),
        ("sheet.xlsx", b"PK\x03\x04....", "zip"),
        ("pic.png", b"\x89PNG\r\n\x1a\n", "image"),
        ("renamed.txt", b"%PDF-1.4", "PDF"),
    ],
)
def test_binary_documents_are_unsupported(name: str, data: bytes, needle: str) -> None:
    with pytest.raises(UnsupportedFileError, match=needle) as caught:
        extract_text(name, data)
    assert caught.value.code == "unsupported_file"


def test_empty_text_is_an_invalid_file() -> None:
    with pytest.raises(ExtractionError) as caught:
        extract_text("empty.txt", b"  \n\n ")
    assert caught.value.code == "invalid_file"
