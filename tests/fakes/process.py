"""Run `portway serve` as a real subprocess (for multi-process and SIGKILL tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes.server import free_port

_SRC = Path(__file__).resolve().parents[2] / "src"


class PortwayProcess:
    """``portway serve --config <yaml>`` on a free loopback port, in a process group of its
    own (with ``workers``: ``--workers N``, a supervisor and its children)."""

    def __init__(
        self, settings: dict[str, Any], directory: Path, *, workers: int | None = None
    ) -> None:
        self.port = free_port()
        self._workers = workers
        self._config = directory / f"portway-{self.port}.yaml"
        # The server key file stays in the test's directory, not the working directory's.
        settings = {"server_key_file": str(directory / "server.key"), **settings}
        self._config.write_text(yaml.safe_dump(settings), encoding="utf-8")
        self._log = directory / f"portway-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self, timeout: float = 60.0) -> PortwayProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_SRC), os.getcwd()])}
        with open(self._log, "wb") as log:
            self._process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "portway", "serve"),
                    *("--config", str(self._config), "--port", str(self.port)),
                    *(("--workers", str(self._workers)) if self._workers else ()),
                ],
                env=env,
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"portway exited at start-up:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"portway did not start in time:\n{self.log()}")

    @property
    def running(self) -> bool:
        """Started and not exited (a crash shows here as False)."""
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        return self._log.read_text(encoding="utf-8", errors="replace")

    def children(self) -> list[int]:
        """The pids of the supervisor's children (its workers and model host)."""
        assert self._process is not None
        pid = self._process.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except FileNotFoundError:
            return []
        return [int(child) for child in text.split()]

    def kill(self) -> None:
        """SIGKILL to the whole process group (as when a container is killed): no shutdown
        hooks run anywhere."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(10)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # its children are reaped by init
                try:
                    os.killpg(self._process.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.02)

    def terminate(self) -> None:
        """Send SIGTERM and return at once (``wait`` for the exit)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code once the process has exited."""
        assert self._process is not None
        return self._process.wait(timeout)

    def stop(self) -> None:
        """SIGTERM: a graceful shutdown (uvicorn drains, the lifespan closes services)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
