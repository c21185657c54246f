"""The code_interpreter tool: results, files in and out, limits, and what the sandbox denies."""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from portway.assistants.builtin import ToolInvocation, ToolOutcome
from portway.assistants.code_interpreter import CodeInterpreterTool
from portway.assistants.code_interpreter.sandbox import NAMESPACE
from portway.config import CodeInterpreterConfig
from portway.retrieval.files import FileService
from portway.retrieval.storage import FileStorage
from portway.store import Database
from portway.store.files import FileRepository
from tests.openapi import assert_matches

TENANT = "team-a"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture
async def files(sqlite_database_url: str, tmp_path: Path) -> AsyncIterator[FileService]:
    database = Database(sqlite_database_url)
    await database.start()
    service = FileService(FileRepository(database), FileStorage(tmp_path / "files", 1_000_000))
    await service.start()
    yield service
    await database.close()


async def make_tool(files: FileService, tmp_path: Path, **limits: Any) -> CodeInterpreterTool:
    settings = {"cpu_seconds": 5, "wall_seconds": 20, "max_output_bytes": 2000, **limits}
    config = CodeInterpreterConfig(work_dir=str(tmp_path), **settings)
    tool = CodeInterpreterTool(config, files)
    await tool.start()
    return tool


async def run(tool: CodeInterpreterTool, code: str, file_ids: tuple[str, ...] = ()) -> ToolOutcome:
    invocation = ToolInvocation(
        tenant=TENANT,
        run_id="run_1",
        thread_id="thread_1",
        arguments={"code": code},
        file_ids=file_ids,
    )
    return await tool.invoke(invocation)


def assert_step_details(outcome: ToolOutcome) -> None:
    assert_matches(
        "RunStepDetailsToolCallsCodeObject",
        {"id": "call_1", "type": "code_interpreter", "code_interpreter": outcome.step_details},
    )


async def test_computes_a_result(files: FileService, tmp_path: Path) -> None:
    tool = await make_tool(files, tmp_path)
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
    assert not any(p.name.startswith("portway-ci-") for p in os.scandir(tmp_path))  # removed


async def test_reads_input_files_and_exports_written_files(
    files: FileService, tmp_path: Path
) -> None:
    tool = await make_tool(files, tmp_path)
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


@pytest.mark.slow
async def test_cpu_limit_kills_a_runaway_loop(files: FileService, tmp_path: Path) -> None:
    tool = await make_tool(files, tmp_path, cpu_seconds=1, wall_seconds=30)
    outcome = await run(tool, "print('start', flush=True)\nwhile True:\n    pass")
    assert outcome.output.startswith("start")
    assert "CPU time limit of 1 s was exceeded" in outcome.output


@pytest.mark.slow
async def test_wall_clock_limit_kills_the_process_group(files: FileService, tmp_path: Path) -> None:
    tool = await make_tool(files, tmp_path, wall_seconds=1)
    code = (
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,)).start()\ntime.sleep(60)"
    )
    outcome = await run(tool, code)
    assert "wall-clock limit of 1 s was exceeded" in outcome.output
    assert_step_details(outcome)


@pytest.fixture
def listening_server() -> Iterator[int]:
    """A TCP server on the host's loopback that records whether anyone connected."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connected = threading.Event()
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connected.set()
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    server.close()
    assert not connected.is_set(), "the sandbox reached a host service"


async def test_network_is_denied(files: FileService, tmp_path: Path, listening_server: int) -> None:
    tool = await make_tool(files, tmp_path)
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {listening_server}), timeout=2)"
    outcome = await run(tool, code)
    assert "PermissionError: socket." in outcome.output
    unix = await run(tool, "import socket\nsocket.socket(socket.AF_UNIX)")
    assert "PermissionError" in unix.output


async def test_network_namespace_when_available(files: FileService, tmp_path: Path) -> None:
    tool = await make_tool(files, tmp_path)
    if tool.isolation != NAMESPACE:
        pytest.skip("`unshare -n` does not work here; the audit hook alone denies sockets")
    # readlink raises no audit event, so this shows the kernel namespace itself.
    outcome = await run(tool, "import os\nos.readlink('/proc/self/ns/net')")
    assert outcome.output.splitlines()[0] != repr(os.readlink("/proc/self/ns/net"))
    assert outcome.output.startswith("'net:[")


async def test_output_is_truncated(files: FileService, tmp_path: Path) -> None:
    tool = await make_tool(files, tmp_path, max_output_bytes=300)
    outcome = await run(tool, "print('x' * 100_000)\nprint('end')")
    logs = outcome.step_details["outputs"][0]["logs"]
    assert logs.startswith("x" * 300)
    assert "[output truncated: 99705 more bytes not shown]" in logs  # 100_000 + 2 newlines + "end"
    assert len(outcome.output) < 500


@pytest.mark.parametrize(
    ("code", "denied"),
    [
        ("open('/etc/hostname').read()", "may not read '/etc/hostname'"),
        ("import os\nos.listdir('/')", "may not read '/'"),
        ("open('../escape.txt', 'w')", "may not write"),
        ("import os\nos.symlink('/etc/hostname', 'link')\nopen('link').read()", "may not read"),
        ("import os\nos.link('/etc/hostname', 'hard')", "may not write '/etc/hostname'"),
        ("import os\nos.system('id')", "os.system is not allowed"),
        ("import subprocess\nsubprocess.run(['id'])", "subprocess.Popen is not allowed"),
        ("import os\nos.fork()", "os.fork is not allowed"),
        ("import ctypes", "ctypes.dlopen is not allowed"),
        ("import os, signal\nos.kill(1, signal.SIGTERM)", "os.kill is not allowed"),
        (
            "import builtins, os\nbuiltins.isinstance = lambda *a: True\n"
            "os.lstat = None\nopen('/etc/hostname').read()",
            "may not read",
        ),
        ("import gc\ngc.get_objects()", "gc.get_objects is not allowed"),
        ("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (5, 5))", "not allowed"),
    ],
)
async def test_the_policy_denies(
    files: FileService, tmp_path: Path, code: str, denied: str
) -> None:
    tool = await make_tool(files, tmp_path)
    outcome = await run(tool, code)
    assert "PermissionError" in outcome.output and denied in outcome.output
    assert "[exit code 1]" in outcome.output
    assert "_boot.py" not in outcome.output  # the policy's own frames are not shown
    assert outcome.created_file_ids == ()


async def test_memory_limit(files: FileService, tmp_path: Path) -> None:
    tool = await make_tool(files, tmp_path, memory_bytes=256 * 1024 * 1024)
    outcome = await run(tool, "block = bytearray(512 * 1024 * 1024)")
    assert "MemoryError" in outcome.output


async def test_environment_is_clean(
    files: FileService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTWAY_MASTER_KEY", "sk-very-secret")
    tool = await make_tool(files, tmp_path)
    outcome = await run(tool, "import os\nsorted(os.environ)")
    assert "PORTWAY_MASTER_KEY" not in outcome.output and "sk-very-secret" not in outcome.output
    assert "'HOME'" in outcome.output and "'TMPDIR'" in outcome.output


async def test_errors_and_bad_arguments_go_back_to_the_model(
    files: FileService, tmp_path: Path
) -> None:
    tool = await make_tool(files, tmp_path)
    syntax = await run(tool, "def broken(:\n    pass")
    assert "SyntaxError" in syntax.output and "[exit code 1]" in syntax.output
    error = await run(tool, "x = 1\n1 / 0")
    assert 'File "<code>", line 2' in error.output and "ZeroDivisionError" in error.output
    invocation = ToolInvocation(TENANT, "run_1", "thread_1", {"code": "  "})
    empty = await tool.invoke(invocation)
    assert "non-empty string argument 'code'" in empty.output
    assert_step_details(empty)
