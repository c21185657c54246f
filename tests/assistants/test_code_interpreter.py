"""The code_interpreter tool: results, files in and out, a session kept per thread, limits."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from portway.assistants.builtin import ToolInvocation, ToolOutcome
from portway.assistants.code_interpreter import CodeInterpreterTool
from portway.config import CodeInterpreterConfig
from portway.errors import ServiceUnavailableError
from portway.retrieval.files import FileService
from tests.assistants.conftest import TENANT, ToolFactory, run
from tests.openapi import assert_matches

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def assert_step_details(outcome: ToolOutcome) -> None:
    assert_matches(
        "RunStepDetailsToolCallsCodeObject",
        {"id": "call_1", "type": "code_interpreter", "code_interpreter": outcome.step_details},
    )


async def test_computes_a_result(make_tool: ToolFactory) -> None:
    tool = await make_tool()
    code = (
        "import statistics\nvalues = [3, 1, 4, 1, 5, 9, 2, 6]\n"
        "print('mean', statistics.mean(values))\nsum(v * v for v in values)"
    )
    outcome = await run(tool, code)
    assert outcome.output.splitlines()[:2] == ["mean 3.875", "173"]
    assert outcome.created_file_ids == ()
    assert_step_details(outcome)
    assert outcome.step_details["input"] == code
    assert outcome.step_details["outputs"] == [{"type": "logs", "logs": "mean 3.875\n173"}]


async def test_state_is_kept_between_calls_of_a_thread(make_tool: ToolFactory) -> None:
    tool = await make_tool()
    first = await run(tool, "x = 41\nopen('notes.txt', 'w').write('kept')\nimport os\nos.getcwd()")
    assert first.output.splitlines()[0] == "'/mnt/data'"
    second = await run(tool, "x + 1, open('notes.txt').read()")
    assert second.output.splitlines()[0] == "(42, 'kept')"
    other_thread = await run(tool, "x", thread_id="thread_2")
    assert "NameError: name 'x' is not defined" in other_thread.output


async def test_reads_input_files_and_exports_written_files(
    make_tool: ToolFactory, files: FileService
) -> None:
    tool = await make_tool()
    data = await files.upload(TENANT, "sales.csv", "assistants", io.BytesIO(b"q,n\nq1,3\nq2,4\n"))
    other_tenant = await files.upload("team-b", "secret.csv", "assistants", io.BytesIO(b"no"))
    code = f"""
import csv, os
rows = list(csv.DictReader(open('sales.csv')))
total = sum(int(r['n']) for r in rows)
os.makedirs('out')
with open('out/total.txt', 'w') as handle:
    handle.write(str(total))
open('chart.png', 'wb').write({PNG!r})
print('total', total, sorted(os.listdir('.')))
"""
    outcome = await run(tool, code, (data.id, other_tenant.id))
    assert "total 7 ['chart.png', 'out', 'sales.csv']" in outcome.output
    assert f"input file {other_tenant.id} was not found" in outcome.output

    assert len(outcome.created_file_ids) == 2  # the unchanged input is not exported
    created = [await files.get(TENANT, file_id) for file_id in outcome.created_file_ids]
    assert [(f.filename, f.purpose) for f in created] == [
        ("chart.png", "assistants_output"),
        ("total.txt", "assistants_output"),
    ]
    assert await files.read(created[1]) == b"7"
    assert {"type": "image", "image": {"file_id": created[0].id}} in outcome.step_details["outputs"]
    assert_step_details(outcome)
    assert all(file_id in outcome.output for file_id in outcome.created_file_ids)

    # The next call of the thread sees the same files; only what it changes is exported.
    again = await run(tool, "open('out/total.txt', 'a').write('!')", (data.id,))
    assert len(again.created_file_ids) == 1
    assert await files.read(await files.get(TENANT, again.created_file_ids[0])) == b"7!"


async def test_a_symlink_or_fifo_is_never_exported(make_tool: ToolFactory) -> None:
    tool = await make_tool()
    code = """
import os
os.symlink('/usr/bin/python3', 'link')
os.mkfifo('pipe')
try:
    os.link('/usr/bin/python3', 'hard')
except OSError as error:
    print('no hard link:', error.strerror)
"""
    outcome = await run(tool, code)
    assert "no hard link" in outcome.output
    assert outcome.created_file_ids == ()


@pytest.mark.slow
async def test_cpu_limit_stops_a_runaway_loop(make_tool: ToolFactory) -> None:
    tool = await make_tool(cpu_seconds=1, wall_seconds=30)
    await run(tool, "x = 'still here'")
    outcome = await run(tool, "print('start', flush=True)\nwhile True:\n    pass")
    assert outcome.output.startswith("start")
    assert "CPU time limit of 1 s was exceeded" in outcome.output
    assert "session ended" not in outcome.output
    assert (await run(tool, "x")).output.startswith("'still here'")  # the session survived


@pytest.mark.slow
async def test_wall_clock_limit_kills_the_sandbox(make_tool: ToolFactory) -> None:
    tool = await make_tool(wall_seconds=1)
    await run(tool, "x = 1")
    code = (
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,)).start()\ntime.sleep(60)"
    )
    outcome = await run(tool, code)
    assert "wall-clock limit of 1 s was exceeded" in outcome.output
    assert "the Python session ended" in outcome.output
    assert_step_details(outcome)
    assert "NameError" in (await run(tool, "x")).output  # a fresh session


async def test_output_is_truncated(make_tool: ToolFactory) -> None:
    tool = await make_tool(max_output_bytes=300)
    outcome = await run(tool, "print('x' * 100_000)\nprint('end')")
    logs = outcome.step_details["outputs"][0]["logs"]
    assert logs.startswith("x" * 300)
    assert "[output truncated: 99705 more bytes not shown]" in logs  # 100_000 + 2 newlines + "end"
    assert len(outcome.output) < 500
    assert (await run(tool, "print('next')")).output == "next"  # nothing left over


async def test_memory_limit(make_tool: ToolFactory) -> None:
    tool = await make_tool(memory_bytes=256 * 1024 * 1024)
    outcome = await run(tool, "block = bytearray(512 * 1024 * 1024)")
    assert "MemoryError" in outcome.output


async def test_errors_and_bad_arguments_go_back_to_the_model(make_tool: ToolFactory) -> None:
    tool = await make_tool()
    syntax = await run(tool, "def broken(:\n    pass")
    assert "SyntaxError" in syntax.output
    error = await run(tool, "x = 1\n1 / 0")
    assert 'File "<code>", line 2' in error.output and "ZeroDivisionError" in error.output
    assert "repl.py" not in error.output  # the session's own frames are not shown
    exited = await run(tool, "import sys\nsys.exit(3)")
    assert "SystemExit: 3" in exited.output
    assert (await run(tool, "x")).output == "1"  # neither ended the session
    arguments: dict[str, Any] = {"code": "  "}
    empty = await tool.invoke(ToolInvocation(TENANT, "run_1", "thread_1", arguments))
    assert "non-empty string argument 'code'" in empty.output
    assert_step_details(empty)


async def test_installed_packages_import(make_tool: ToolFactory) -> None:
    tool = await make_tool()
    outcome = await run(tool, "import numpy\nint(numpy.arange(10).sum())")
    assert outcome.output == "45"


async def test_sessions_are_bounded_and_expire(make_tool: ToolFactory) -> None:
    tool = await make_tool(max_sessions=1, max_concurrent=1, idle_seconds=0.3)
    await run(tool, "x = 'a'", thread_id="thread_a")
    await run(tool, "x = 'b'", thread_id="thread_b")  # only one session: thread_a's closes
    assert "NameError" in (await run(tool, "x", thread_id="thread_a")).output
    await asyncio.sleep(1.0)  # idle for longer than idle_seconds: closed by the sweeper
    assert "NameError" in (await run(tool, "x", thread_id="thread_a")).output


@pytest.mark.parametrize("bwrap", ["/nonexistent/bwrap", "/bin/false"])
async def test_without_a_working_boundary_the_tool_is_off(
    files: FileService, tmp_path: Path, bwrap: str
) -> None:
    tool = CodeInterpreterTool(CodeInterpreterConfig(bwrap=bwrap), files, [tmp_path])
    await tool.start()
    assert not tool.available
    status = tool.status()
    assert status["status"] == "off"
    expected = "not installed: apt-get install bubblewrap" if "nonexistent" in bwrap else "failed"
    assert expected in status["reason"]
    with pytest.raises(ServiceUnavailableError, match="code_interpreter is off on this server"):
        await run(tool, "print(1)")
