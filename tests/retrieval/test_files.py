"""File names and on-disk storage, below the HTTP layer."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from portway.retrieval.files import clean_filename
from portway.retrieval.storage import FileStorage, FileTooLargeError


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("evil\x00\x07name\n.txt", "evilname.txt"),
        ("..", "file"),
        ("", "file"),
        (None, "file"),
        ("é" * 300, "é" * 255),
    ],
)
def test_clean_filename_keeps_only_a_harmless_last_component(given: str | None, kept: str) -> None:
    assert clean_filename(given) == kept


def test_storage_refuses_ids_that_could_escape(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path, max_bytes=10)
    for bad in ("../x", "a/b", "", ".hidden", "x" * 100):
        with pytest.raises(ValueError):
            storage.path(bad)


def test_storage_write_is_bounded_and_leaves_nothing_behind(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path, max_bytes=10)
    assert storage.write("file-ok0001", io.BytesIO(b"0123456789")) == 10
    assert storage.read("file-ok0001") == b"0123456789"
    with pytest.raises(FileTooLargeError):
        storage.write("file-big0001", io.BytesIO(b"0123456789A"))
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [storage.path("file-ok0001")]
