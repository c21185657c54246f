"""Fixtures for the code_interpreter tests: a file service and sandboxed tools."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from portway.assistants.builtin import ToolInvocation, ToolOutcome
from portway.assistants.code_interpreter import CodeInterpreterTool
from portway.config import CodeInterpreterConfig
from portway.retrieval.files import FileService
from portway.retrieval.storage import FileStorage
from portway.store import Database
from portway.store.files import FileRepository
from tests.conftest import service_unavailable

TENANT = "team-a"
ToolFactory = Callable[..., Awaitable[CodeInterpreterTool]]


@pytest.fixture
async def files(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[FileService]:
    database = Database(sqlite_database_url)
    await database.start()
    service = FileService(FileRepository(database), FileStorage(tmp_path / "files", 1_000_000))
    await service.start()
    yield service
    await database.close()


@pytest.fixture
async def make_tool(files: FileService, tmp_path: Path) -> AsyncIterator[ToolFactory]:
    """Start code_interpreter tools (skip, or fail under PORTWAY_TEST_SERVICES=required,
    when bubblewrap is missing); all are closed after the test."""
    tools: list[CodeInterpreterTool] = []

    async def make(**limits: Any) -> CodeInterpreterTool:
        if shutil.which("bwrap") is None:
            service_unavailable("bubblewrap is not installed (apt-get install bubblewrap)")
        settings = {"cpu_seconds": 5, "wall_seconds": 20, "max_output_bytes": 2000, **limits}
        tool = CodeInterpreterTool(CodeInterpreterConfig(**settings), files, [tmp_path])
        await tool.start()
        tools.append(tool)
        if not tool.available:
            service_unavailable(f"no sandbox boundary here: {tool.unavailable}")
        return tool

    yield make
    for tool in tools:
        await tool.close()


async def run(
    tool: CodeInterpreterTool,
    code: str,
    file_ids: tuple[str, ...] = (),
    thread_id: str = "thread_1",
) -> ToolOutcome:
    invocation = ToolInvocation(
        tenant=TENANT,
        run_id="run_1",
        thread_id=thread_id,
        arguments={"code": code},
        file_ids=file_ids,
    )
    return await tool.invoke(invocation)
