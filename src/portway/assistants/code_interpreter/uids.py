"""Uids for sessions when Portway runs as root, leased across every process on the machine.

``RLIMIT_NPROC`` counts processes per uid, so two live sessions must never share one,
not even sessions of two Portway processes (``--workers N``). A lease is an exclusive
``flock`` on ``<lock dir>/<uid>``: the kernel drops it when the holder closes it or dies.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


def default_lock_dir() -> Path:
    """``/run`` (root-only) when writable, else the temp dir."""
    base = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    return base / "portway-sandbox-uids"


class NoFreeUid(Exception):
    """Every uid of the range is leased."""


@dataclass(frozen=True, slots=True)
class UidLease:
    uid: int
    fd: int  # the locked file; closing it ends the lease

    def release(self) -> None:
        os.close(self.fd)


@dataclass(frozen=True, slots=True)
class UidRange:
    first: int
    count: int
    lock_dir: Path

    def lease(self) -> UidLease:
        """The first uid of the range no session on this machine holds."""
        self.lock_dir.mkdir(mode=0o700, exist_ok=True)
        info = self.lock_dir.lstat()
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise NoFreeUid(f"{self.lock_dir} is not a private directory of this user")
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        for uid in range(self.first, self.first + self.count):
            fd = os.open(self.lock_dir / str(uid), flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return UidLease(uid, fd)
        raise NoFreeUid(f"all {self.count} sandbox uids from {self.first} are in use")
