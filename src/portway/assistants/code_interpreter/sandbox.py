"""Run untrusted Python in a child process with limits (see this package's README.md).

The child is ``python -I -S -u _boot.py <policy>`` in a fresh session (its own process
group), with a minimal environment, stdin from /dev/null, stdout and stderr merged into
one capped pipe, rlimits set in ``preexec_fn``, and a wall-clock timeout after which the
whole process group is killed. When ``unshare -n`` works (root, or unprivileged user
namespaces), the child also runs in a new, empty network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from portway.config import CodeInterpreterConfig, ConfigError

logger = logging.getLogger(__name__)

BOOT = Path(__file__).with_name("_boot.py")
# Read-only extras the standard library touches (time zones, CPU counts).
EXTRA_READ_ROOTS = (
    "/dev/null",
    "/dev/urandom",
    "/dev/zero",
    "/etc/localtime",
    "/usr/share/zoneinfo",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/sys/devices/system/cpu",
)
_READ_CHUNK = 64 * 1024
_DRAIN_AFTER_KILL_SECONDS = 2.0

NAMESPACE = "namespace+audit_hook"
AUDIT_HOOK = "audit_hook"


@dataclass(frozen=True, slots=True)
class SandboxResult:
    output: str
    truncated_bytes: int
    exit_code: int | None
    timed_out: bool
    cpu_limited: bool

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _limits(config: CodeInterpreterConfig) -> Callable[[], None]:
    """The ``preexec_fn``: runs in the forked child before exec; only setrlimit calls."""
    cpu = config.cpu_seconds
    rules = (
        # SIGXCPU at the soft limit, SIGKILL one second later.
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (config.memory_bytes, config.memory_bytes)),
        (resource.RLIMIT_FSIZE, (config.max_file_bytes, config.max_file_bytes)),
        (resource.RLIMIT_NPROC, (config.max_processes, config.max_processes)),
        (resource.RLIMIT_NOFILE, (config.max_open_files, config.max_open_files)),
        (resource.RLIMIT_CORE, (0, 0)),
    )

    def apply() -> None:
        for limit, values in rules:
            resource.setrlimit(limit, values)

    return apply


# Root can create a network namespace directly; other users need a user namespace too.
_NAMESPACE_PREFIXES = (("unshare", "-n", "--"), ("unshare", "-r", "-n", "--"))


async def _works(prefix: tuple[str, ...]) -> bool:
    try:
        probe = await asyncio.create_subprocess_exec(
            *prefix,
            "true",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return await asyncio.wait_for(probe.wait(), 10) == 0
    except (OSError, TimeoutError):
        return False


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> tuple[bytes, int]:
    """Keep the first ``cap`` bytes; count (and discard) the rest so the child never blocks."""
    kept = bytearray()
    dropped = 0
    while chunk := await stream.read(_READ_CHUNK):
        room = max(0, cap - len(kept))
        kept += chunk[:room]
        dropped += len(chunk) - min(room, len(chunk))
    return bytes(kept), dropped


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class Sandbox:
    def __init__(self, config: CodeInterpreterConfig) -> None:
        self._config = config
        self._python = config.python or sys.executable
        self._prefix: tuple[str, ...] = ()
        self.isolation = AUDIT_HOOK

    async def start(self) -> None:
        """Detect network isolation (``unshare -n``); fail if it was required but is missing."""
        wanted = self._config.network_isolation
        if wanted != AUDIT_HOOK:
            for prefix in _NAMESPACE_PREFIXES:
                if await _works(prefix):
                    self._prefix = prefix
                    self.isolation = NAMESPACE
                    break
        if wanted == "namespace" and self.isolation != NAMESPACE:
            raise ConfigError(
                "code_interpreter.network_isolation: 'namespace' needs a working `unshare -n` "
                "(root or unprivileged user namespaces)"
            )
        logger.info("code_interpreter sandbox network isolation: %s", self.isolation)

    def _argv(self, policy: bytes) -> list[str]:
        flags = ["-I", "-B", "-u"]
        if not self._config.site_packages:
            flags.append("-S")
        return [*self._prefix, self._python, *flags, str(BOOT), policy.decode()]

    async def run(self, code: str, root: Path) -> SandboxResult:
        """Run ``code`` with ``root/work`` as its working directory (``root/tmp`` as TMPDIR)."""
        work, tmp, script = root / "work", root / "tmp", root / "main.py"
        await asyncio.to_thread(script.write_text, code, "utf-8")
        policy = orjson.dumps(
            {
                "script": str(script),
                "read_roots": list(EXTRA_READ_ROOTS),
                "write_roots": [str(work), str(tmp)],
            }
        )
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "MPLBACKEND": "Agg",
        }
        process = await asyncio.create_subprocess_exec(
            *self._argv(policy),
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limits(self._config),  # only setrlimit: safe after fork
        )
        assert process.stdout is not None
        reader = asyncio.ensure_future(_read_capped(process.stdout, self._config.max_output_bytes))
        timed_out = False
        try:
            await asyncio.wait_for(process.wait(), self._config.wall_seconds)
        except TimeoutError:
            timed_out = True
        except BaseException:  # cancelled (e.g. the run was cancelled): stop everything
            _kill_group(process.pid)
            reader.cancel()
            raise
        if process.returncode is None:  # over the wall-clock limit: end the whole group
            _kill_group(process.pid)
            await process.wait()
        try:
            kept, dropped = await asyncio.wait_for(reader, _DRAIN_AFTER_KILL_SECONDS)
        except TimeoutError:
            kept, dropped = b"", 0
        code_killed = process.returncode in (-signal.SIGXCPU, -signal.SIGKILL)
        return SandboxResult(
            output=kept.decode("utf-8", errors="replace"),
            truncated_bytes=dropped,
            exit_code=process.returncode,
            timed_out=timed_out,
            cpu_limited=code_killed and not timed_out,
        )
