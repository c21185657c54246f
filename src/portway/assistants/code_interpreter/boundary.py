"""The OS boundary around model-written code: bubblewrap, probed once at start-up.

``Boundary.probe`` finds ``bwrap`` and the Python runtime the sandbox needs, refuses
runtime directories that would expose Portway's own state, and starts one throw-away
sandbox with exactly the options every session uses. Any failure leaves the boundary
unavailable with a reason (and code_interpreter off); there is no weaker fallback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from portway.assistants.code_interpreter.seccomp import compile_filter
from portway.config import CodeInterpreterConfig

logger = logging.getLogger(__name__)

REPL = Path(__file__).with_name("_repl.py")
REPL_IN_SANDBOX = "/opt/portway/repl.py"
DATA = "/mnt/data"  # the code's working directory, as in OpenAI's code interpreter
_PROBE_SECONDS = 20.0
_HOST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
_SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": DATA,
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "MPLBACKEND": "Agg",
}
# What the runtime on a usual Linux needs besides /usr (merged-/usr layouts get symlinks).
_USR_LINKS = (("usr/lib", "/lib"), ("usr/lib64", "/lib64"), ("usr/bin", "/bin"))
_RUNTIME_QUERY = (
    "import json, sys, site; print(json.dumps({'executable': sys.executable, "
    "'base_prefix': sys.base_prefix, 'site': [p for p in sys.path if p.endswith('-packages')]}))"
)


class BoundaryUnavailable(Exception):
    """No OS boundary can be set up on this machine; the message says why."""


@dataclass(frozen=True, slots=True)
class Runtime:
    python: str  # the real interpreter binary (not a venv symlink)
    read_only: tuple[str, ...]  # host directories bound read-only at the same path
    site_dirs: tuple[str, ...]  # added to sys.path inside (site_packages: true)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _exposes(directory: str, protected: Sequence[Path]) -> Path | None:
    """A protected path (database, file storage, Portway's cwd) the directory would expose."""
    root = Path(directory).resolve()
    for path in protected:
        if _inside(path.resolve(), root):
            return path
    return None


async def _query_runtime(python: str) -> dict[str, Any]:
    """Ask the (trusted, configured) interpreter where it lives."""
    process = await asyncio.create_subprocess_exec(
        python,
        "-I",
        "-c",
        _RUNTIME_QUERY,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_HOST_ENV,
    )
    out, err = await asyncio.wait_for(process.communicate(), _PROBE_SECONDS)
    if process.returncode != 0:
        raise BoundaryUnavailable(f"{python} failed: {err.decode(errors='replace')[:200]}")
    found = orjson.loads(out)
    if not isinstance(found, dict):
        raise BoundaryUnavailable(f"{python} gave no runtime description")
    return found


async def find_runtime(
    config: CodeInterpreterConfig, protected: Sequence[Path]
) -> tuple[Runtime, list[str]]:
    """The runtime to bind, and warnings about site-packages left out."""
    found = await _query_runtime(config.python or sys.executable)
    return await asyncio.to_thread(_layout, found, config, protected)


def _layout(
    found: dict[str, Any], config: CodeInterpreterConfig, protected: Sequence[Path]
) -> tuple[Runtime, list[str]]:
    python = os.path.realpath(str(found["executable"]))
    base = os.path.realpath(str(found["base_prefix"]))
    if not _inside(Path(python), Path(base)) and not python.startswith("/usr/"):
        raise BoundaryUnavailable(f"the interpreter {python} is not inside {base}")
    read_only = [] if _inside(Path(base), Path("/usr")) else [base]
    warnings: list[str] = []
    site_dirs: list[str] = []
    if config.site_packages:
        for entry in found.get("site") or []:
            directory = os.path.realpath(str(entry))
            if not os.path.isdir(directory) or directory in site_dirs:
                continue
            if (exposed := _exposes(directory, protected)) is not None:
                warnings.append(f"{directory} is not bound: it would expose {exposed}")
                continue
            site_dirs.append(directory)
            if not any(_inside(Path(directory), Path(r)) for r in (*read_only, "/usr")):
                read_only.append(directory)
    for directory in read_only:
        if (exposed := _exposes(directory, protected)) is not None:
            raise BoundaryUnavailable(
                f"the Python runtime {directory} would expose {exposed}: "
                "point code_interpreter.python at an interpreter installed elsewhere"
            )
    return Runtime(python, tuple(read_only), tuple(site_dirs)), warnings


def _filesystem(runtime: Runtime) -> tuple[str, ...]:
    """Read-only binds: /usr (with this machine's /bin, /lib, /lib64), runtime, _repl.py."""
    args = ["--ro-bind", "/usr", "/usr"]
    for target, link in _USR_LINKS:
        if os.path.islink(link) or not os.path.exists(link):
            args += ["--symlink", target, link]
        else:
            args += ["--ro-bind", link, link]
    # bwrap would create missing parents 0700: unreadable once the session drops root.
    made: set[str] = set()
    for target in (*runtime.read_only, REPL_IN_SANDBOX):
        for parent in reversed(Path(target).parents):
            if str(parent) not in made and parent != Path("/"):
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
    for directory in runtime.read_only:
        args += ["--ro-bind", directory, directory]
    return (*args, "--ro-bind", str(REPL), REPL_IN_SANDBOX)


@dataclass(frozen=True, slots=True)
class Boundary:
    """Builds the bubblewrap command line of a session."""

    bwrap: str
    runtime: Runtime
    config: CodeInterpreterConfig
    as_root: bool  # Portway is root: no user namespace, the session drops to its own uid
    seccomp: bytes | None  # the compiled deny-list (None: libseccomp is missing)
    filesystem: tuple[str, ...]  # bwrap options binding /usr, the runtime and _repl.py

    def argv(
        self, *, uid: int, info_fd: int, hello: str, control_fd: int, seccomp_fd: int | None
    ) -> list[str]:
        """``bwrap ... python repl.py <policy>`` for a session running as ``uid``."""
        config = self.config
        args = [self.bwrap, "--proc", "/proc", "--dev", "/dev"]
        args += ["--perms", "0755", "--dir", "/mnt"]  # not 0700, see above
        args += ["--size", str(config.disk_bytes), "--perms", "0700", "--tmpfs", DATA]
        args += ["--size", str(config.disk_bytes), "--perms", "01777", "--tmpfs", "/tmp"]
        args += ["--size", str(config.disk_bytes), "--perms", "01777", "--tmpfs", "/dev/shm"]
        # The scratch tmpfs go first: a runtime installed under /tmp (a venv in a checkout
        # there) is bound on top of the sandbox's /tmp instead of being hidden by it.
        args += self.filesystem
        # In a user namespace the sandbox owns bwrap's root and /dev tmpfs (unsized): no
        # writes there, so /mnt/data, /tmp and /dev/shm (each ``disk_bytes``) are all.
        args += ["--remount-ro", "/dev", "--remount-ro", "/"]
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--hostname", "sandbox"]
        if self.as_root:
            # Root's processes are exempt from RLIMIT_NPROC even inside a user namespace,
            # and bwrap can map root only to itself: the session drops to ``uid`` instead.
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534"]
            args += ["--cap-drop", "ALL"]
        args += ["--die-with-parent", "--new-session", "--clearenv", "--chdir", DATA]
        for name, value in _SANDBOX_ENV.items():
            args += ["--setenv", name, value]
        args += ["--info-fd", str(info_fd)]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        policy = {
            "uid": uid,
            "gid": uid,
            "hello": hello,
            "control_fd": control_fd,
            "cpu_seconds": config.cpu_seconds,
            "session_cpu_seconds": config.session_cpu_seconds,
            "memory_bytes": config.memory_bytes,
            "max_file_bytes": config.max_file_bytes,
            "max_processes": config.max_processes,
            "max_open_files": config.max_open_files,
            "site_dirs": list(self.runtime.site_dirs),
        }
        python = [self.runtime.python, "-I", "-B", "-u", "-S", REPL_IN_SANDBOX]
        return [*args, "--", *python, orjson.dumps(policy).decode()]

    @property
    def host_env(self) -> dict[str, str]:
        """bwrap's own environment: nothing of Portway's (its pid 1 keeps it in memory)."""
        return dict(_HOST_ENV)

    @classmethod
    async def probe(
        cls, config: CodeInterpreterConfig, protected: Sequence[Path]
    ) -> tuple[Boundary, list[str]]:
        """Find bwrap, the runtime and libseccomp; raises ``BoundaryUnavailable``.

        Whether a sandbox really starts is checked by running one (``CodeInterpreterTool``).
        """
        bwrap = shutil.which(config.bwrap)
        if bwrap is None:
            raise BoundaryUnavailable(
                f"bubblewrap ({config.bwrap!r}) is not installed: apt-get install bubblewrap"
            )
        try:
            runtime, warnings = await find_runtime(config, protected)
        except (OSError, TimeoutError, orjson.JSONDecodeError) as error:
            message = f"the Python runtime could not be inspected: {error}"
            raise BoundaryUnavailable(message) from None
        seccomp = await asyncio.to_thread(compile_filter)
        if seccomp is None:
            warnings.append("libseccomp is not installed: the sandbox runs without seccomp")
        filesystem = await asyncio.to_thread(_filesystem, runtime)
        as_root = os.geteuid() == 0
        boundary = cls(bwrap, runtime, config, as_root, seccomp, filesystem)
        return boundary, warnings
