"""File bytes on disk, addressed by Portway's file id (never by a client's filename).

Layout: ``<storage_dir>/<id[-2:]>/<id>``; ids are generated server-side from
``[A-Za-z0-9-]`` so a path can never escape the directory. Writes go to a temporary file
in ``<storage_dir>/.incoming`` and are renamed into place, so a crash never leaves a
half-written file under a valid id. All methods block: call them from a thread.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from portway.errors import RequestTooLargeError

_COPY_CHUNK = 1024 * 1024
_VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{3,63}")


class FileTooLargeError(RequestTooLargeError):
    default_code = "file_too_large"


class StorageQuotaExceededError(RequestTooLargeError):
    """The tenant's files would outgrow ``files.tenant_quota_bytes``."""

    default_code = "storage_quota_exceeded"


class FileStorage:
    def __init__(self, root: str | os.PathLike[str], max_bytes: int) -> None:
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes
        self._incoming = self.root / ".incoming"

    def prepare(self) -> None:
        self._incoming.mkdir(parents=True, exist_ok=True)

    def path(self, file_id: str) -> Path:
        if not _VALID_ID.fullmatch(file_id):
            raise ValueError(f"not a storable file id: {file_id!r}")
        return self.root / file_id[-2:] / file_id

    def too_large(self) -> FileTooLargeError:
        return FileTooLargeError(
            f"The file is larger than the maximum of {self.max_bytes} bytes.", param="file"
        )

    def write(self, file_id: str, source: BinaryIO) -> int:
        """Copy ``source`` under ``file_id``; returns the size. Over ``max_bytes`` → 413."""
        self.prepare()
        size = 0
        handle = tempfile.NamedTemporaryFile(dir=self._incoming, delete=False)  # noqa: SIM115
        try:
            with handle:
                while chunk := source.read(_COPY_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise self.too_large()
                    handle.write(chunk)
            self._place(Path(handle.name), file_id)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
        return size

    def copy_in(self, file_id: str, source: Path) -> int:
        """Store a local file (e.g. a code_interpreter output) under ``file_id``."""
        with open(source, "rb") as handle:
            return self.write(file_id, handle)

    def _place(self, temporary: Path, file_id: str) -> None:
        target = self.path(file_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, target)

    def read(self, file_id: str) -> bytes:
        return self.path(file_id).read_bytes()

    def copy_out(self, file_id: str, destination: Path) -> None:
        shutil.copyfile(self.path(file_id), destination)

    def delete(self, file_id: str) -> None:
        self.path(file_id).unlink(missing_ok=True)
