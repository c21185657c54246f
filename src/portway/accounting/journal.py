"""The ledger journal: usage rows appended to a local file before the response is sent.

Contract: ``append`` writes one JSON line with a single ``write(2)`` on a file opened
with ``O_APPEND``. Once it returns, the line is in the kernel's page cache, so it survives
the process being killed (SIGKILL, OOM) but not a crash of the machine itself. Each
process writes its own segment files and holds an exclusive ``flock`` on them while it
lives; a segment whose lock can be taken belongs to a dead process and is an orphan that
``orphans()`` hands to recovery. ``seal()`` closes the current segment (its rows then go
to the database) and starts a new one; ``discard()`` deletes a segment whose rows are
committed. Segment names start with the writing process's instance id (its budget lease
holder id), so recovery can tell when everything an instance wrote is committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".jsonl"


@dataclass(slots=True)
class Segment:
    path: Path
    fd: int
    lines: int = 0


def instance_of(path: Path) -> str:
    """The process instance that wrote a segment (``<instance>-<token>.jsonl``)."""
    return path.name.split("-", 1)[0]


class LedgerJournal:
    def __init__(self, directory: Path, instance: str | None = None) -> None:
        self.directory = directory
        # Names this process's segments; `-` separates it from each segment's token.
        self.instance = (instance or str(os.getpid())).replace("-", "")
        self._current: Segment | None = None

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._current = self._new_segment()

    def _new_segment(self) -> Segment:
        name = f"{self.instance}-{secrets.token_hex(6)}{SUFFIX}"
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return Segment(path, fd)

    def append(self, line: bytes) -> None:
        """Journal one row (``line`` ends with a newline). Only the file holds it: the
        writer's bounded queue holds the record itself, so a long database outage grows
        the segment on disk, not the process's memory."""
        segment = self._current
        assert segment is not None, "journal not open"
        os.write(segment.fd, line)
        segment.lines += 1

    def seal(self) -> Segment | None:
        """Close the current segment for writing (None if empty) and start a new one."""
        segment = self._current
        if segment is None or segment.lines == 0:
            return None
        self._current = self._new_segment()
        return segment

    @staticmethod
    def discard(segment: Segment) -> None:
        """The segment's rows are committed: delete it, then let go of its lock."""
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        os.close(segment.fd)

    def close(self) -> None:
        """Release the empty current segment (a non-empty one stays for recovery)."""
        segment = self._current
        self._current = None
        if segment is None:
            return
        if segment.lines == 0:
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
        os.close(segment.fd)

    def orphans(self) -> list[Segment]:
        """Segments of dead processes, locked for us now; read them with ``read``."""
        found: list[Segment] = []
        if not self.directory.exists():
            return found
        own = {self._current.path} if self._current else set()
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path in own:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live process (maybe ourselves, sealed) owns it
                continue
            if not path.exists():  # deleted between listing and locking
                os.close(fd)
                continue
            found.append(Segment(path, fd))
        return found

    def all_orphaned(self, segments: list[Segment]) -> set[str]:
        """Instances whose every segment on disk is among ``segments`` (we hold them all):
        once those are committed, nothing that instance wrote is left to recover."""
        held = {segment.path for segment in segments}
        instances = {instance_of(path) for path in held}
        for path in self.directory.glob(f"*{SUFFIX}"):
            if path not in held:
                instances.discard(instance_of(path))
        return instances

    @staticmethod
    def read(segment: Segment) -> list[bytes]:
        """Complete lines of an orphan (a line cut short by the kill is skipped)."""
        data = segment.path.read_bytes()
        return [line for line in data.split(b"\n")[:-1] if line.strip()]
