"""One sandboxed Python session: a bubblewrap sandbox running ``_repl.py``.

The session keeps its globals and ``/mnt/data`` between cells. After every cell the
processes the cell left behind (a detached, double-forked child included) are killed;
at a timeout, or when the session is closed, the sandbox's PID namespace is torn down
(its init is SIGKILLed, which kills every process in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any

import orjson

from portway.assistants.code_interpreter.boundary import DATA, Boundary
from portway.assistants.code_interpreter.seccomp import program_fd
from portway.assistants.code_interpreter.workdir import WorkDir

logger = logging.getLogger(__name__)

MARKER = b"\x00PORTWAY-END "
_READ_CHUNK = 64 * 1024
_MAX_STATUS_BYTES = 4096
_START_SECONDS = 20.0
_REAP_PASSES = 50


class SessionBroken(Exception):
    """The sandbox could not be started or stopped answering; the message says why."""


@dataclass(frozen=True, slots=True)
class CellResult:
    output: str
    truncated_bytes: int
    timed_out: bool = False
    cpu_limited: bool = False
    ended: bool = False  # the session is gone (its variables and files with it)
    error: bool = False


@dataclass(slots=True)
class _Capture:
    """The first ``cap`` bytes of a cell's output; the rest is counted."""

    cap: int
    kept: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def add(self, data: bytes) -> None:
        room = max(0, self.cap - len(self.kept))
        self.kept += data[:room]
        self.dropped += max(0, len(data) - room)

    def text(self) -> str:
        return self.kept.decode("utf-8", errors="replace")


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    return data


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def _signal(pidfd: int | None) -> None:
    if pidfd is not None:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)


def _namespace_of(pid: str) -> int | None:
    """The PID namespace of a live process (None for a zombie: it is dead already)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            if handle.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return None
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except (OSError, IndexError):
        return None


def _kill_in_namespace(namespace: int, keep: frozenset[int]) -> int:
    """SIGKILL the processes of the PID namespace except ``keep``; how many were found."""
    found = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in keep or _namespace_of(entry) != namespace:
            continue
        pidfd = _pidfd(int(entry))
        # Checked again through the pidfd's process: the number may have been reused.
        if pidfd is not None and _namespace_of(entry) == namespace:
            found += 1
            _signal(pidfd)
        if pidfd is not None:
            os.close(pidfd)
    return found


class Session:
    """A running sandbox; ``execute`` runs one cell at a time (callers hold ``lock``)."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        control: int,
        init_pid: int,
        namespace: int,
        workdir: WorkDir,
    ) -> None:
        self._process = process
        self._control = control
        self._init_pid = init_pid
        self._init = _pidfd(init_pid)
        self._namespace = namespace
        self._repl_pid: int | None = None
        self.workdir = workdir
        self.lock = asyncio.Lock()
        self.alive = True
        self.staged: set[str] = set()  # input file ids already copied in
        self.last_used = asyncio.get_running_loop().time()

    @classmethod
    async def start(cls, boundary: Boundary, uid: int) -> Session:
        """Start a sandbox and wait for its session to be ready; raises ``SessionBroken``."""
        info_read, info_write = os.pipe()
        control_read, control_write = os.pipe()
        seccomp = program_fd(boundary.seccomp) if boundary.seccomp is not None else None
        inherited = [info_write, control_read, *([seccomp] if seccomp is not None else [])]
        hello = secrets.token_hex(8)
        argv = boundary.argv(
            uid=uid, info_fd=info_write, hello=hello, control_fd=control_read, seccomp_fd=seccomp
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=inherited,
                env=boundary.host_env,
                start_new_session=True,
            )
        except OSError as error:
            for fd in (info_read, control_write):
                os.close(fd)
            raise SessionBroken(f"bwrap could not be started: {error}") from error
        finally:
            for fd in inherited:
                with contextlib.suppress(OSError):
                    os.close(fd)
        try:
            info = orjson.loads(
                await asyncio.wait_for(asyncio.to_thread(_read_all, info_read), _START_SECONDS)
            )
            init_pid, namespace = int(info["child-pid"]), int(info["pid-namespace"])
        except (TimeoutError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            output = await process.stdout.read(2000) if process.stdout else b""
            await process.wait()
            os.close(control_write)
            reason = output.decode(errors="replace").strip() or "no output"
            raise SessionBroken(f"bwrap failed: {reason}") from None
        finally:
            os.close(info_read)
        session = cls(process, control_write, init_pid, namespace, WorkDir(-1, None))
        try:
            ready = await session._read_cell(hello, _START_SECONDS, _Capture(2000))
            if ready.timed_out or ready.ended:
                raise SessionBroken(f"the sandboxed Python did not start: {ready.output.strip()}")
            session.workdir = await asyncio.to_thread(session._open_workdir, boundary, uid)
            session._repl_pid = await asyncio.to_thread(session._find_repl)
        except OSError as error:
            await session.close()
            session.release_workdir()
            raise SessionBroken(f"the sandbox could not be inspected: {error}") from None
        except BaseException:
            await session.close()
            session.release_workdir()
            raise
        return session

    def _open_workdir(self, boundary: Boundary, uid: int) -> WorkDir:
        """``/mnt/data`` of the running sandbox (its init has pivoted: the session is up)."""
        fd = os.open(
            f"/proc/{self._init_pid}/root{DATA}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        )
        usage = os.fstatvfs(fd)
        if usage.f_blocks * usage.f_frsize > boundary.config.disk_bytes or os.listdir(fd):
            os.close(fd)
            raise SessionBroken(f"{DATA} of the sandbox is not the fresh, size-limited tmpfs")
        if boundary.as_root:
            os.fchown(fd, uid, uid)
        return WorkDir(fd, (uid, uid) if boundary.as_root else None)

    def _find_repl(self) -> int:
        with open(f"/proc/{self._init_pid}/task/{self._init_pid}/children") as handle:
            children = handle.read().split()
        if len(children) != 1:
            raise SessionBroken("the sandbox does not run exactly one session process")
        return int(children[0])

    async def execute(self, code: str, wall_seconds: float, max_output_bytes: int) -> CellResult:
        """Run one cell; on a timeout the whole sandbox is killed (``ended``)."""
        self.last_used = asyncio.get_running_loop().time()
        nonce = secrets.token_hex(8)
        frame = orjson.dumps({"code": code, "nonce": nonce})
        try:
            framed = len(frame).to_bytes(4, "big") + frame
            await asyncio.to_thread(_write_all, self._control, framed)
        except OSError:
            await self.close()
            return CellResult("", 0, ended=True)
        try:
            result = await self._read_cell(nonce, wall_seconds, _Capture(max_output_bytes))
        except BaseException:  # cancelled (the run was cancelled): stop everything
            await self.close()
            raise
        if result.timed_out or result.ended:
            await self.close()
        else:
            await asyncio.to_thread(self._kill_leftovers)
        self.last_used = asyncio.get_running_loop().time()
        return result

    def _kill_leftovers(self) -> None:
        """Kill every process the cell left in the sandbox (not its init, not the session)."""
        keep = frozenset({self._init_pid, self._repl_pid or -1})
        for _ in range(_REAP_PASSES):
            if not _kill_in_namespace(self._namespace, keep):
                return
        logger.warning("code_interpreter: processes keep appearing in a sandbox; killing it")
        self.alive = False
        self._kill()

    async def _read_cell(self, nonce: str, wall_seconds: float, capture: _Capture) -> CellResult:
        try:
            status = await asyncio.wait_for(self._until_marker(nonce, capture), wall_seconds)
        except TimeoutError:
            return CellResult(capture.text(), capture.dropped, timed_out=True, ended=True)
        if status is None:
            return CellResult(capture.text(), capture.dropped, ended=True)
        return CellResult(
            capture.text(),
            capture.dropped,
            cpu_limited=bool(status.get("cpu_limited")),
            error=bool(status.get("error")),
        )

    async def _until_marker(self, nonce: str, capture: _Capture) -> dict[str, Any] | None:
        """Output up to the cell's end marker; its status, or None when the sandbox ended."""
        assert self._process.stdout is not None
        stream = self._process.stdout
        marker = MARKER + nonce.encode() + b" "
        pending = bytearray()
        while True:
            chunk = await stream.read(_READ_CHUNK)
            if not chunk:
                capture.add(bytes(pending))
                return None
            pending += chunk
            found = pending.find(marker)
            if found >= 0:
                capture.add(bytes(pending[:found]))
                rest = bytes(pending[found + len(marker) :])
                while b"\n" not in rest and len(rest) < _MAX_STATUS_BYTES:
                    more = await stream.read(_READ_CHUNK)
                    if not more:
                        return None
                    rest += more
                line = rest.split(b"\n", 1)[0]
                try:
                    status = orjson.loads(line)
                except orjson.JSONDecodeError:
                    status = {"error": True}
                return status if isinstance(status, dict) else {"error": True}
            keep = len(marker) - 1
            if len(pending) > keep:
                capture.add(bytes(pending[:-keep]))
                del pending[:-keep]

    def _kill(self) -> None:
        # The init's death makes the kernel kill every process of the PID namespace.
        _signal(self._init)
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()

    async def close(self) -> None:
        """Tear the sandbox down (idempotent); its ``/mnt/data`` goes with the descriptor."""
        if not self.alive and self._init is None:
            return
        self.alive = False
        self._kill()
        await self._process.wait()
        for fd in (self._control, self._init):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._init = None

    def release_workdir(self) -> None:
        if self.workdir.fd >= 0:
            os.close(self.workdir.fd)
            self.workdir = WorkDir(-1, None)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
