"""Portway's side of a sandbox's ``/mnt/data``: every access is relative to a directory fd.

The sandboxed code keeps running between calls and may swap a directory for a symlink
at any time, so Portway (often root) never resolves a path inside the sandbox: each
component is opened with ``O_NOFOLLOW`` relative to its parent's descriptor, and only
regular files with one link are read.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

# Looking at more entries than this after a call is not worth it (nor exported).
MAX_SCANNED_ENTRIES = 10_000
_SKIPPED_DIRS = frozenset({"__pycache__"})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Snapshot = dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)


@dataclass(frozen=True, slots=True)
class WorkDir:
    """An open descriptor of the sandbox's data directory (owned by the session)."""

    fd: int
    owner: tuple[int, int] | None  # (uid, gid) for files Portway places there, when root

    def snapshot(self) -> Snapshot:
        """Regular single-link files under the directory (symlinks are never followed)."""
        found: Snapshot = {}
        scanned = 0
        walk = os.fwalk(".", dir_fd=self.fd, follow_symlinks=False)
        for directory, subdirectories, names, directory_fd in walk:
            subdirectories[:] = [d for d in subdirectories if d not in _SKIPPED_DIRS]
            scanned += len(names) + len(subdirectories)
            if scanned > MAX_SCANNED_ENTRIES:
                break
            for name in names:
                try:
                    info = os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    relative = os.path.normpath(os.path.join(directory, name))
                    found[relative] = (info.st_size, info.st_mtime_ns)
        return found

    @contextmanager
    def _parent(self, relative: str) -> Iterator[tuple[int, str]]:
        """The descriptor of ``relative``'s directory (opened component by component)."""
        parts = PurePosixPath(relative).parts
        if not parts or any(part in ("..", "/") for part in parts):
            raise OSError(f"not a plain relative path: {relative!r}")
        opened: list[int] = []
        current = self.fd
        try:
            for part in parts[:-1]:
                current = os.open(part, _DIR_FLAGS, dir_fd=current)
                opened.append(current)
            yield current, parts[-1]
        finally:
            for fd in opened:
                os.close(fd)

    def open_for_export(self, relative: str) -> BinaryIO:
        """A regular, single-link file of the sandbox, opened without following links."""
        with self._parent(relative) as (parent, name):
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(name, flags, dir_fd=parent)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            raise OSError(f"{relative} is not a regular file")
        return os.fdopen(fd, "rb")

    def place(self, name: str, source: Path) -> bool:
        """Copy ``source`` to a new file ``name``; False when the name is taken."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, 0o644, dir_fd=self.fd)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as target, source.open("rb") as origin:
            if self.owner is not None:
                os.fchown(fd, *self.owner)
            shutil.copyfileobj(origin, target)
        return True
