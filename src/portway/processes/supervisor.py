"""``portway serve --workers N``: one supervisor, N worker processes on one port.

Why a supervisor that binds, then forks (and not workers each binding with
``SO_REUSEPORT`` by themselves): the configuration is read and validated once, before
anything starts, so a mistake fails the command at once; the supervisor holds every
listening socket for the whole life of the server, so a crashed worker's connections wait
in its socket's backlog for the replacement instead of being refused, and ``--port 0``
works; the model host's address and token reach the workers in memory. The sockets are
``SO_REUSEPORT`` ones, one per worker, so the kernel spreads connections evenly (a single
shared socket lets one busy worker take most accepts). The supervisor itself starts no
thread and no event loop, so forking it is safe; each child builds its own app.

Lifecycle:
- Start: the model host first when some deployment runs in process (``Provider.hosted``),
  waiting until its models are loaded, then the workers, each serving its own socket
  (settings rewritten by ``processes.hosted`` so the workers reach the host).
- A worker or the model host that dies is started again, after a pause that grows while
  it keeps dying young. A child that cannot start (its app's start-up failed, e.g. the
  database is unreachable: exit code 3; a configuration mistake: 2) stops the whole
  server with that code, as gunicorn does.
- SIGTERM or SIGINT: forwarded to every worker, which turns its readiness off, stops
  accepting after ``server.unready_delay_seconds``, drains in-flight requests within
  ``server.drain_timeout_seconds`` and closes its services (background jobs and budget
  leases handed back, ledger flushed). The supervisor closes its copies of the sockets,
  waits for the workers (killing any still alive well past the drain timeout), then stops
  the model host. A second signal is forwarded too (it skips the unready delay).
- Children die with the supervisor (Linux ``PR_SET_PDEATHSIG``: they get SIGTERM).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portway.config import ConfigError, Settings
from portway.processes.hosted import worker_settings
from portway.processes.sockets import loopback_listener, reuseport_listeners

logger = logging.getLogger(__name__)

# Exit codes of a child that cannot start, not worth restarting: uvicorn's when the app's
# start-up failed, the CLI's for a configuration mistake.
STARTUP_FAILURE = 3
CONFIG_ERROR = 2
_PR_SET_PDEATHSIG = 1
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
# Restart pauses: doubled per young death, up to the maximum; "young" is below `_MATURE`.
_FIRST_PAUSE = 0.5
_MAX_PAUSE = 30.0
_MATURE = 10.0
# Past the drain budget, what a worker may still take to close its services.
_CLOSE_GRACE = 30.0
_HOST_START_TIMEOUT = 600.0


def resolve_workers(workers: int | str) -> int:
    """``auto``: one worker per CPU core this process may run on; else the number itself."""
    if workers != "auto":
        return int(workers)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(slots=True)
class _Child:
    name: str
    start: Callable[[], int]  # runs in the child; returns its exit code
    pid: int = 0
    started_at: float = 0.0
    pause: float = 0.0  # before the next restart
    restart_at: float | None = None


class Supervisor:
    def __init__(self, settings: Settings, workers: int, *, access_log: bool) -> None:
        self._settings = settings
        self._count = workers
        self._access_log = access_log
        self._children: list[_Child] = []
        self._listeners: list[socket.socket] = []
        self._host_listener: socket.socket | None = None
        self._host: _Child | None = None
        self._stopping = False
        self._exit_code = 0

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        settings = self._settings
        self._listeners = reuseport_listeners(settings.host, settings.port, self._count)
        port = self._listeners[0].getsockname()[1]
        logger.info(
            "Portway on http://%s:%d with %d workers (supervisor pid %d)",
            settings.host,
            port,
            self._count,
            os.getpid(),
        )
        if settings.redis_url is None:
            logger.warning(
                "no redis_url: rate limits, circuit breakers and the memory cache are per "
                "worker (%d workers admit up to %d times a rate limit)",
                self._count,
                self._count,
            )
        try:
            workers = self._start_model_host()
            if workers is not None:
                for index, listener in enumerate(self._listeners):
                    self._children.append(self._worker(index, listener, workers))
                for child in self._children:
                    self._spawn(child)
                self._supervise()
        finally:
            self._shutdown()
        return self._exit_code

    # Children ------------------------------------------------------------------------

    def _worker(self, index: int, listener: socket.socket, settings: Settings) -> _Child:
        from portway.serving import serve

        def start() -> int:
            self._close_all_but(listener)
            started = serve(settings, access_log=self._access_log, sockets=[listener])
            return 0 if started else STARTUP_FAILURE

        return _Child(f"worker {index + 1}", start)

    def _start_model_host(self) -> Settings | None:
        """Start the model host if needed; the workers' settings (None: shutting down)."""
        from portway.processes.model_host import host_model_id, hosted_indexes, run_model_host
        from portway.providers.registry import ProviderRegistry

        settings = self._settings
        indexes = hosted_indexes(settings, ProviderRegistry())
        if not indexes:
            return worker_settings(settings, workers=self._count)
        listener = self._host_listener = loopback_listener()
        token = secrets.token_urlsafe(32)

        def start() -> int:
            self._close_all_but(listener)
            return 0 if run_model_host(settings, listener, token) else STARTUP_FAILURE

        self._host = _Child("model host", start)
        self._spawn(self._host)
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        abilities = self._wait_for_host(base_url, token)
        if abilities is None:
            return None
        logger.info("model host (pid %d) serves %d local deployments", self._host.pid, len(indexes))
        hosted = {
            index: (host_model_id(index), abilities[host_model_id(index)]) for index in indexes
        }
        return worker_settings(
            settings, workers=self._count, base_url=f"{base_url}/v1", token=token, hosted=hosted
        )

    def _wait_for_host(self, base_url: str, token: str) -> dict[str, Any] | None:
        """The host's report once its models are loaded (None: it died, or a signal)."""
        from portway.processes.model_host import HEALTH_PATH

        request = urllib.request.Request(
            base_url + HEALTH_PATH, headers={"authorization": f"Bearer {token}"}
        )
        deadline = time.monotonic() + _HOST_START_TIMEOUT
        assert self._host is not None
        while time.monotonic() < deadline:
            self._handle_signals(timeout=0.2)
            if self._stopping or self._exit_code:
                return None
            if not self._host.pid:
                logger.error("the model host exited before its models were loaded")
                self._exit_code = STARTUP_FAILURE
                return None
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    return json.loads(answer.read())  # type: ignore[no-any-return]
            except (urllib.error.URLError, OSError):
                continue
        logger.error("the model host did not load its models in %.0f s", _HOST_START_TIMEOUT)
        self._exit_code = STARTUP_FAILURE
        return None

    def _close_all_but(self, keep: socket.socket) -> None:
        """In a child: close the other children's listeners (theirs to close on exit)."""
        for sock in (*self._listeners, self._host_listener):
            if sock is not None and sock is not keep:
                sock.close()

    def _spawn(self, child: _Child) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _become_child(parent)
                code = child.start()
            except ConfigError as exc:
                print(f"portway: {exc}", file=sys.stderr)
                code = CONFIG_ERROR
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        child.pid = pid
        child.started_at = time.monotonic()
        child.restart_at = None

    def _all(self) -> list[_Child]:
        return [*self._children, *([self._host] if self._host is not None else [])]

    # Supervision ---------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stopping and not self._exit_code:
            self._handle_signals(timeout=0.5)
            now = time.monotonic()
            for child in self._all():
                if not self._stopping and child.restart_at is not None and now >= child.restart_at:
                    logger.warning("starting %s again", child.name)
                    self._spawn(child)

    def _handle_signals(self, timeout: float) -> None:
        """Wait up to ``timeout`` for a signal; reap exited children; begin the shutdown."""
        received = signal.sigtimedwait(_SIGNALS, timeout)
        if received is not None and received.si_signo in (signal.SIGTERM, signal.SIGINT):
            self._begin_shutdown(received.si_signo)
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = next((c for c in self._all() if c.pid == pid), None)
            if child is None:
                continue
            child.pid = 0
            code = os.waitstatus_to_exitcode(status)
            if self._stopping:
                continue
            if code in (STARTUP_FAILURE, CONFIG_ERROR):
                logger.error("%s failed to start; stopping", child.name)
                self._exit_code = code
                continue
            lived = time.monotonic() - child.started_at
            child.pause = _FIRST_PAUSE if lived >= _MATURE or not child.pause else child.pause * 2
            child.pause = min(child.pause, _MAX_PAUSE)
            child.restart_at = time.monotonic() + child.pause
            logger.error(
                "%s (pid %d) exited with %d after %.1f s; restarting in %.1f s",
                child.name,
                pid,
                code,
                lived,
                child.pause,
            )

    def _begin_shutdown(self, signo: int) -> None:
        if not self._stopping:
            logger.info("shutting down %d workers", self._count)
            self._stopping = True
            for listener in self._listeners:
                listener.close()  # the workers' copies close when they stop accepting
        for child in self._children:
            if child.pid:
                os.kill(child.pid, signo)

    def _shutdown(self) -> None:
        """Stop the workers (gracefully), then the model host."""
        if not self._stopping:
            self._begin_shutdown(signal.SIGTERM)
        server = self._settings.server
        deadline = time.monotonic() + server.unready_delay_seconds
        deadline += server.drain_timeout_seconds + _CLOSE_GRACE
        self._wait_for(self._children, deadline)
        if self._host is not None:
            if self._host.pid:
                os.kill(self._host.pid, signal.SIGTERM)
            self._wait_for([self._host], time.monotonic() + _CLOSE_GRACE)
        if self._host_listener is not None:
            self._host_listener.close()

    def _wait_for(self, children: list[_Child], deadline: float) -> None:
        while any(child.pid for child in children):
            if time.monotonic() >= deadline:
                for child in children:
                    if child.pid:
                        logger.error("%s did not stop in time; killing it", child.name)
                        os.kill(child.pid, signal.SIGKILL)
                deadline = float("inf")
            self._handle_signals(timeout=0.2)


def _become_child(parent: int) -> None:
    """Undo the supervisor's signal setup; die with the supervisor."""
    for signo in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signo, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)
