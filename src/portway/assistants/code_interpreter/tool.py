"""The ``code_interpreter`` built-in tool: run the model's Python, return logs and files.

Each thread gets a sandboxed Python session (see ``session.py``) whose globals and
``/mnt/data`` (the code's working directory) last until it is idle for
``idle_seconds``. Per invocation the input files (``file_ids``) not yet copied in are
placed in ``/mnt/data``, the code runs as one cell, and every regular file the cell
created or changed there becomes a Portway file (purpose ``assistants_output``), listed
in ``created_file_ids``; images also appear as ``image`` outputs. Without an OS
boundary (bubblewrap) the tool is off and every invocation fails with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from portway.assistants.builtin import ToolInvocation, ToolOutcome
from portway.assistants.code_interpreter.boundary import Boundary, BoundaryUnavailable
from portway.assistants.code_interpreter.pool import SessionKey, SessionPool, start_session
from portway.assistants.code_interpreter.session import CellResult, Session, SessionBroken
from portway.assistants.code_interpreter.uids import UidRange, default_lock_dir
from portway.config import CodeInterpreterConfig
from portway.errors import RequestTooLargeError, ServiceUnavailableError
from portway.protocol.files import ASSISTANTS_OUTPUT
from portway.retrieval.files import FileService, clean_filename

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
_PROBE_CODE = "import os\nos.getuid(), os.getppid()"
_PROBE_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class CreatedFile:
    path: str  # relative to /mnt/data
    file_id: str


def _status_notes(result: CellResult, config: CodeInterpreterConfig) -> list[str]:
    notes = []
    if result.truncated_bytes:
        notes.append(f"[output truncated: {result.truncated_bytes} more bytes not shown]")
    if result.timed_out:
        notes.append(
            f"[execution stopped: the wall-clock limit of {config.wall_seconds:g} s was exceeded]"
        )
    elif result.cpu_limited:
        notes.append(
            f"[execution stopped: the CPU time limit of {config.cpu_seconds} s was exceeded]"
        )
    if result.ended:
        notes.append(
            "[the Python session ended: the next call starts a new one "
            "(variables and files of earlier calls are gone)]"
        )
    return notes


class CodeInterpreterTool:
    type: ClassVar[str] = "code_interpreter"

    def __init__(
        self,
        config: CodeInterpreterConfig,
        files: FileService,
        protected: Sequence[Path] = (),
    ) -> None:
        """``protected``: paths (database, file storage, ...) no sandbox may ever see."""
        self._config = config
        self._files = files
        self._protected = tuple(protected)
        self._slots = asyncio.Semaphore(config.max_concurrent)
        self._pool: SessionPool | None = None
        self._uids = UidRange(config.sandbox_uid, config.sandbox_uids, default_lock_dir())
        self.unavailable: str | None = "not started"
        self._seccomp = False

    @property
    def available(self) -> bool:
        return self._pool is not None

    def status(self) -> dict[str, Any]:
        """For ``/health/ready``."""
        if self._pool is not None:
            return {"status": "ok", "isolation": "bubblewrap", "seccomp": self._seccomp}
        return {"status": "off", "reason": self.unavailable}

    async def start(self) -> None:
        """Probe the OS boundary once; without one the tool stays off (logged, not raised)."""
        try:
            boundary, warnings = await Boundary.probe(self._config, self._protected)
            for warning in warnings:
                logger.warning("code_interpreter: %s", warning)
            await self._check(boundary)
        except (BoundaryUnavailable, SessionBroken) as error:
            self.unavailable = str(error)
            logger.warning("code_interpreter is OFF: %s", error)
            return
        self._pool = SessionPool(boundary, self._config, self._uids)
        self._pool.start()
        self._seccomp = boundary.seccomp is not None
        self.unavailable = None
        logger.info(
            "code_interpreter sandbox: bubblewrap (%s), seccomp %s",
            boundary.bwrap,
            "on" if self._seccomp else "off",
        )

    async def _check(self, boundary: Boundary) -> None:
        """Run a cell in a throw-away sandbox: it must start and not run as root."""
        session, lease = await start_session(boundary, self._uids)
        try:
            result = await session.execute(_PROBE_CODE, _PROBE_SECONDS, 2000)
        finally:
            await session.close()
            session.release_workdir()
            if lease is not None:
                lease.release()
        if result.error or result.ended or not result.output.startswith("("):
            raise BoundaryUnavailable(f"the probe cell failed: {result.output.strip()[:300]}")
        if result.output.startswith("(0,"):
            raise BoundaryUnavailable("the probe cell ran as root")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def invoke(self, invocation: ToolInvocation) -> ToolOutcome:
        if self._pool is None:
            raise ServiceUnavailableError(
                f"code_interpreter is off on this server: {self.unavailable}"
            )
        code = invocation.arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            message = "code_interpreter needs a non-empty string argument 'code'."
            return ToolOutcome(
                output=message,
                step_details={"input": "", "outputs": [{"type": "logs", "logs": message}]},
            )
        key = SessionKey(invocation.tenant, invocation.thread_id)
        async with self._slots:
            try:
                session, _ = await self._pool.session(key)
            except SessionBroken as error:
                raise ServiceUnavailableError(f"code_interpreter sandbox failed: {error}") from None
            try:
                async with session.lock:
                    return await self._run(invocation, code, session)
            finally:
                if not session.alive:
                    await self._pool.discard(key, session)

    async def _run(self, invocation: ToolInvocation, code: str, session: Session) -> ToolOutcome:
        if not session.alive:  # ended while this call waited for it
            return self._outcome(code, CellResult("", 0, ended=True), [], [], [])
        notes = await self._stage_inputs(invocation, session)
        before = await asyncio.to_thread(session.workdir.snapshot)
        config = self._config
        result = await session.execute(code, config.wall_seconds, config.max_output_bytes)
        created, skipped = await self._collect(invocation.tenant, session, before)
        return self._outcome(code, result, notes, created, skipped)

    def _outcome(
        self,
        code: str,
        result: CellResult,
        notes: list[str],
        created: list[CreatedFile],
        skipped: list[str],
    ) -> ToolOutcome:
        logs = "\n".join(
            part
            for part in [result.output.rstrip("\n"), *_status_notes(result, self._config)]
            if part
        )
        outputs: list[dict[str, Any]] = [{"type": "logs", "logs": logs}] if logs else []
        outputs += [
            {"type": "image", "image": {"file_id": item.file_id}}
            for item in created
            if Path(item.path).suffix.lower() in IMAGE_EXTENSIONS
        ]
        lines = [*notes, logs or "(no output)"]
        if created:
            listed = ", ".join(f"{item.path} ({item.file_id})" for item in created)
            lines.append(f"Files written by the code, now available to the user: {listed}")
        lines += skipped
        return ToolOutcome(
            output="\n".join(lines),
            step_details={"input": code, "outputs": outputs},
            created_file_ids=tuple(item.file_id for item in created),
        )

    async def _stage_inputs(self, invocation: ToolInvocation, session: Session) -> list[str]:
        """Copy the input files not yet in ``/mnt/data``; notes on what was missing."""
        wanted = [f for f in dict.fromkeys(invocation.file_ids) if f not in session.staged]
        if not wanted:
            return []
        records = await self._files.get_many(invocation.tenant, wanted)
        notes = []
        for file_id in wanted:
            record = records.get(file_id)
            if record is None:
                notes.append(f"[input file {file_id} was not found and is not available]")
                continue
            name = clean_filename(record.filename)
            source = self._files.storage.path(file_id)
            try:
                placed = await asyncio.to_thread(session.workdir.place, name, source)
                if not placed:
                    name = f"{file_id}-{name}"
                    placed = await asyncio.to_thread(session.workdir.place, name, source)
            except OSError as error:
                notes.append(f"[input file {file_id} could not be placed: {error.strerror}]")
                continue
            if not placed:
                notes.append(f"[input file {file_id}: {name} exists already, not replaced]")
                continue
            session.staged.add(file_id)
        return notes

    async def _collect(
        self, tenant: str, session: Session, before: dict[str, tuple[int, int]]
    ) -> tuple[list[CreatedFile], list[str]]:
        """New or changed files in ``/mnt/data`` → Portway files (at most ``max_output_files``)."""
        after = await asyncio.to_thread(session.workdir.snapshot)
        changed = sorted(path for path, info in after.items() if before.get(path) != info)
        created: list[CreatedFile] = []
        skipped: list[str] = []
        for relative in changed:
            if len(created) >= self._config.max_output_files:
                skipped.append(f"[not exported: {relative} (more than {len(created)} files)]")
                continue
            try:
                handle = await asyncio.to_thread(session.workdir.open_for_export, relative)
            except OSError:
                continue
            try:
                record = await self._files.upload(
                    tenant, Path(relative).name, ASSISTANTS_OUTPUT, handle
                )
            except RequestTooLargeError as error:  # the file size limit or the tenant's quota
                skipped.append(f"[not exported: {relative}: {error.message}]")
                continue
            finally:
                await asyncio.to_thread(handle.close)
            created.append(CreatedFile(relative, record.id))
        return created, skipped
