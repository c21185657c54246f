"""The ``code_interpreter`` built-in tool: run the model's Python, return logs and files.

Per invocation: a fresh temporary directory ``<root>/work`` (the code's working
directory) receives copies of the invocation's input files (``file_ids``, under their
sanitised names), the code runs in the ``Sandbox``, and every regular file the code
created or changed there becomes a Portway file (purpose ``assistants_output``), listed
in ``created_file_ids``; images also appear as ``image`` outputs. The directory is
removed afterwards: no state survives between invocations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from portway.assistants.builtin import ToolInvocation, ToolOutcome
from portway.assistants.code_interpreter.sandbox import Sandbox, SandboxResult
from portway.config import CodeInterpreterConfig
from portway.errors import RequestTooLargeError
from portway.protocol.files import ASSISTANTS_OUTPUT
from portway.retrieval.files import FileService, clean_filename

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
_SKIPPED_DIRS = frozenset({"__pycache__"})
# Looking at more entries than this after a run is not worth it (nor exported).
MAX_SCANNED_ENTRIES = 10_000

Snapshot = dict[str, tuple[int, int]]  # relative path -> (size, mtime_ns)


@dataclass(frozen=True, slots=True)
class CreatedFile:
    path: str  # relative to the working directory
    file_id: str


def _snapshot(work: Path) -> Snapshot:
    """Regular files under ``work`` (symlinks and hard links are not followed or kept)."""
    found: Snapshot = {}
    scanned = 0
    for directory, subdirectories, names in os.walk(work, followlinks=False):
        subdirectories[:] = [d for d in subdirectories if d not in _SKIPPED_DIRS]
        scanned += len(names) + len(subdirectories)
        if scanned > MAX_SCANNED_ENTRIES:
            break
        for name in names:
            path = Path(directory, name)
            info = path.lstat()
            # A hard link could point at a file outside the sandbox: never export one.
            if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                found[str(path.relative_to(work))] = (info.st_size, info.st_mtime_ns)
    return found


def _open_no_follow(path: Path) -> Any:
    return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")


def _status_notes(result: SandboxResult, config: CodeInterpreterConfig) -> list[str]:
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
    elif result.exit_code:
        notes.append(f"[exit code {result.exit_code}]")
    return notes


class CodeInterpreterTool:
    type: ClassVar[str] = "code_interpreter"

    def __init__(self, config: CodeInterpreterConfig, files: FileService) -> None:
        self._config = config
        self._files = files
        self.sandbox = Sandbox(config)
        self._slots = asyncio.Semaphore(config.max_concurrent)

    @property
    def isolation(self) -> str:
        """``namespace+audit_hook`` or ``audit_hook`` (known after ``start``)."""
        return self.sandbox.isolation

    async def start(self) -> None:
        await self.sandbox.start()

    async def invoke(self, invocation: ToolInvocation) -> ToolOutcome:
        code = invocation.arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            message = "code_interpreter needs a non-empty string argument 'code'."
            return ToolOutcome(
                output=message,
                step_details={"input": "", "outputs": [{"type": "logs", "logs": message}]},
            )
        async with self._slots:
            root = Path(
                await asyncio.to_thread(
                    tempfile.mkdtemp, prefix="portway-ci-", dir=self._config.work_dir
                )
            )
            try:
                return await self._run(invocation, code, root)
            finally:
                await asyncio.to_thread(shutil.rmtree, root, True)

    async def _run(self, invocation: ToolInvocation, code: str, root: Path) -> ToolOutcome:
        work = root / "work"
        await asyncio.to_thread(work.mkdir)
        await asyncio.to_thread((root / "tmp").mkdir)
        notes = await self._stage_inputs(invocation, work)
        before = await asyncio.to_thread(_snapshot, work)
        result = await self.sandbox.run(code, root)
        created, skipped = await self._collect(invocation.tenant, work, before)

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

    async def _stage_inputs(self, invocation: ToolInvocation, work: Path) -> list[str]:
        """Copy the input files into the working directory; notes on what was missing."""
        if not invocation.file_ids:
            return []
        records = await self._files.get_many(invocation.tenant, list(invocation.file_ids))
        notes = []
        used: set[str] = set()
        for file_id in dict.fromkeys(invocation.file_ids):
            record = records.get(file_id)
            if record is None:
                notes.append(f"[input file {file_id} was not found and is not available]")
                continue
            name = clean_filename(record.filename)
            if name in used:
                name = f"{file_id}-{name}"
            used.add(name)
            await asyncio.to_thread(self._files.storage.copy_out, file_id, work / name)
        return notes

    async def _collect(
        self, tenant: str, work: Path, before: Snapshot
    ) -> tuple[list[CreatedFile], list[str]]:
        """New or changed files in ``work`` → Portway files (at most ``max_output_files``)."""
        after = await asyncio.to_thread(_snapshot, work)
        changed = sorted(path for path, info in after.items() if before.get(path) != info)
        created: list[CreatedFile] = []
        skipped: list[str] = []
        for relative in changed:
            if len(created) >= self._config.max_output_files:
                skipped.append(f"[not exported: {relative} (more than {len(created)} files)]")
                continue
            try:
                handle = await asyncio.to_thread(_open_no_follow, work / relative)
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
