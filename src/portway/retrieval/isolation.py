"""Extraction and chunking in worker processes, each file under a time limit.

Contract: ``ExtractionPool.prepare(filename, data, chunking)`` returns a file's chunks,
computed in a separate process: a slow or pathological file can neither hold the
server's GIL (a regex or a parser in a thread still stalls the event loop) nor run past
its time limit. A file that exceeds the limit kills its worker (a fresh one takes its
place) and raises ``ExtractionTimeoutError``. Workers start on first use (``spawn``:
nothing of the server's threads or sockets is inherited) and are reused; at most
``size`` files are prepared at once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess

from portway.retrieval.chunking import Chunking, TextChunk, chunk_text, chunking_encoding
from portway.retrieval.extract import ExtractionError, extract_text

_STARTUP_SECONDS = 120.0


class ExtractionTimeoutError(ExtractionError):
    """The file took longer than the time limit to extract and chunk."""

    code = "invalid_file"


class ExtractionWorkerError(RuntimeError):
    """The worker failed for a reason that is not the file's (it died, or a bug)."""


@dataclass(frozen=True, slots=True)
class _Job:
    filename: str
    data: bytes
    size: int
    overlap: int


def _serve(connection: Connection) -> None:
    """A worker's loop: one ``_Job`` in, ``("ok", chunks)`` or ``("error", reason)`` out."""
    encoding = chunking_encoding()
    connection.send(("ready", None))
    while True:
        try:
            job: _Job = connection.recv()
        except EOFError:
            return
        try:
            text = extract_text(job.filename, job.data)
            reply: tuple[str, object] = (
                "ok",
                chunk_text(text, Chunking(job.size, job.overlap), encoding),
            )
        except ExtractionError as error:
            reply = ("error", error)
        except Exception as error:  # the worker survives a bug; the parent logs it
            reply = ("bug", f"{type(error).__name__}: {error}")
        connection.send(reply)


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, context: SpawnContext) -> None:
        """Start a worker and wait until it is ready (blocking: run in a thread)."""
        self.connection, child = context.Pipe()
        self.process: SpawnProcess = context.Process(
            target=_serve, args=(child,), name="portway-extract", daemon=True
        )
        self.process.start()
        child.close()
        # Start-up (imports, the BPE) does not count against a file's time limit.
        if not self.connection.poll(_STARTUP_SECONDS) or self.connection.recv()[0] != "ready":
            self.kill()
            raise ExtractionWorkerError("the extraction worker did not start")

    def call(self, job: _Job, timeout: float) -> tuple[str, object]:
        """Send a job and wait for its reply (blocking: run in a thread)."""
        self.connection.send(job)
        if not self.connection.poll(timeout):
            raise TimeoutError
        return self.connection.recv()  # type: ignore[no-any-return]

    def kill(self) -> None:
        """Stop the process; a thread still waiting on the pipe then sees EOF."""
        self.process.kill()
        self.process.join(5)


class ExtractionPool:
    """At most ``size`` worker processes that extract and chunk files under a time limit."""

    def __init__(self, size: int, timeout: float) -> None:
        self.timeout = timeout
        self._context = multiprocessing.get_context("spawn")
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Worker] = []
        self._closed = False

    async def prepare(self, filename: str, data: bytes, chunking: Chunking) -> list[TextChunk]:
        """The chunks of one file; ``ExtractionError`` (with its code) when it cannot be."""
        job = _Job(filename, data, chunking.size, chunking.overlap)
        async with self._slots:
            worker = self._idle.pop() if self._idle else await asyncio.to_thread(self._spawn)
            try:
                kind, value = await asyncio.to_thread(worker.call, job, self.timeout)
            except TimeoutError:
                await asyncio.to_thread(worker.kill)
                raise ExtractionTimeoutError(
                    f"extracting and chunking the file took longer than the {self.timeout:g} s "
                    "limit (retrieval.indexing_timeout)"
                ) from None
            except (EOFError, OSError) as error:
                await asyncio.to_thread(worker.kill)
                raise ExtractionWorkerError(f"the extraction worker died: {error!r}") from None
            except asyncio.CancelledError:
                worker.kill()  # its reply would answer the next job otherwise
                raise
            self._release(worker)
        if kind == "ok":
            return value  # type: ignore[return-value]
        if kind == "error":
            raise value  # type: ignore[misc]
        raise ExtractionWorkerError(str(value))

    def _spawn(self) -> _Worker:
        return _Worker(self._context)

    def _release(self, worker: _Worker) -> None:
        if self._closed:
            worker.kill()
        else:
            self._idle.append(worker)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for worker in idle:
            worker.connection.close()  # the worker sees EOF and returns
            await asyncio.to_thread(worker.process.join, 5)
            if worker.process.is_alive():
                worker.kill()
