"""Escapes that worked against the audit-hook sandbox must fail against the OS boundary.

Each test runs code the way an attacker with a virtual key would get it run, and checks
from the host that nothing escaped: the secret is not in the output, the file was not
written, the listener saw no connection, no process of the sandbox outlives the call.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from portway.retrieval.files import FileService
from tests.assistants.conftest import TENANT, ToolFactory, run
from tests.conftest import service_unavailable

SECRET = "sk-master-escape-test-5f1c"
MARKER_NAME = "tenant-secret-row-9d2e.csv"


def sandbox_processes(first_uid: int, count: int) -> list[str]:
    """Host processes running as one of the sandbox uids."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        uid = int(status.split("\nUid:", 1)[1].split()[0])
        state = status.split("\nState:", 1)[1].split()[0]
        if first_uid <= uid < first_uid + count and state != "Z":
            found.append(entry)
    return found


def processes_with(token: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if token.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(entry)
            except OSError:
                continue
    return [pid for pid in found if int(pid) != os.getpid()]


@pytest.fixture
def database_path(sqlite_database_url: str) -> Path:
    return Path(sqlite_database_url.removeprefix("sqlite:///"))


async def test_cannot_read_the_database(
    make_tool: ToolFactory, files: FileService, database_path: Path
) -> None:
    await files.upload(TENANT, MARKER_NAME, "assistants", io.BytesIO(b"x"))
    with sqlite3.connect(database_path) as host:  # the row is there to steal
        assert (MARKER_NAME,) in host.execute("select filename from files").fetchall()
    tool = await make_tool()
    code = f"""
import os, sqlite3
path = {str(database_path)!r}
for attempt in (
    lambda: open(path, 'rb').read(),
    lambda: sqlite3.connect(path).execute('select filename from files').fetchall(),
    lambda: sqlite3.connect('file:' + path + '?mode=ro', uri=True).execute('select 1').fetchall(),
    lambda: os.readlink('/proc/1/cwd'),
    lambda: os.listdir(os.path.dirname(path)),
):
    try:
        print('GOT', attempt())
    except Exception as error:
        print('denied', type(error).__name__)
"""
    outcome = await run(tool, code)
    assert MARKER_NAME not in outcome.output
    assert "GOT" not in outcome.output
    assert outcome.output.count("denied") == 5


async def test_cannot_read_the_host_environment(
    make_tool: ToolFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTWAY_MASTER_KEY", SECRET)
    tool = await make_tool()
    code = f"""
import os
print(sorted(os.environ))
for pid in ['self', '1', str(os.getppid()), {str(os.getpid())!r}] + os.listdir('/proc'):
    if pid.isdigit() or pid == 'self':
        try:
            data = open(f'/proc/{{pid}}/environ', 'rb').read()
            print(pid, data)
        except OSError as error:
            print(pid, 'denied', error.strerror)
"""
    outcome = await run(tool, code)
    assert SECRET not in outcome.output and "PORTWAY_MASTER_KEY" not in outcome.output
    assert "'HOME'" in outcome.output
    assert "1 denied" in outcome.output  # the sandbox's init (bwrap) runs as another user
    assert f"{os.getpid()} denied No such file" in outcome.output  # the host's PIDs are not there


async def test_cannot_read_etc_shadow_nor_host_files(make_tool: ToolFactory) -> None:
    tool = await make_tool()
    code = """
import os
for path in ('/etc/shadow', '/etc/passwd', '/root', '/home', '/work'):
    try:
        print('GOT', path, open(path).read()[:40] if os.path.isfile(path) else os.listdir(path))
    except OSError as error:
        print('denied', path, type(error).__name__)
print(sorted(os.listdir('/')))
"""
    outcome = await run(tool, code)
    assert "denied /etc/shadow FileNotFoundError" in outcome.output
    assert "GOT /etc/shadow" not in outcome.output and "root:" not in outcome.output
    assert "GOT /home" not in outcome.output


async def test_fd_relative_opens_do_not_reach_the_host(
    make_tool: ToolFactory, database_path: Path
) -> None:
    tool = await make_tool()
    relative = str(database_path).lstrip("/")
    code = f"""
import os
root = os.open('/', os.O_RDONLY | os.O_DIRECTORY)
here = os.open('.', os.O_RDONLY | os.O_DIRECTORY)
for directory, path in ((root, 'etc/shadow'), (root, {relative!r}), (here, '../../etc/shadow')):
    try:
        print('GOT', os.read(os.open(path, os.O_RDONLY, dir_fd=directory), 100))
    except OSError as error:
        print('denied', type(error).__name__)
os.chdir('/')
print(sorted(os.listdir('.')))
"""
    outcome = await run(tool, code)
    assert "GOT" not in outcome.output
    assert outcome.output.count("denied FileNotFoundError") == 3


async def test_cannot_write_outside_the_work_directory(
    make_tool: ToolFactory, tmp_path: Path
) -> None:
    tool = await make_tool()
    target = tmp_path / "escaped.txt"
    host_tmp = Path("/tmp") / f"portway-escape-{os.getpid()}.txt"
    code = f"""
import os
for path in ({str(target)!r}, '/usr/escaped.txt', '/opt/portway/repl.py', '/escaped.txt'):
    try:
        open(path, 'w').write('escaped')
        print('WROTE', path)
    except OSError as error:
        print('denied', path, type(error).__name__)
open({str(host_tmp)!r}, 'w').write('private tmp')  # the sandbox's own /tmp
"""
    outcome = await run(tool, code)
    assert "WROTE" not in outcome.output
    assert outcome.output.count("denied") == 4
    assert not target.exists() and not host_tmp.exists()
    assert not await asyncio.to_thread(Path("/usr/escaped.txt").exists)


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


async def test_cannot_reach_a_host_service(make_tool: ToolFactory, listening_server: int) -> None:
    tool = await make_tool()
    code = f"""
import socket
for host in ('127.0.0.1', 'localhost', '10.0.2.2'):
    try:
        socket.create_connection((host, {listening_server}), timeout=2)
        print('CONNECTED', host)
    except OSError as error:
        print('denied', host, type(error).__name__)
"""
    outcome = await run(tool, code)
    assert "CONNECTED" not in outcome.output
    assert outcome.output.count("denied") == 3


async def test_cannot_enter_the_host_network_namespace(
    make_tool: ToolFactory, listening_server: int
) -> None:
    tool = await make_tool()
    code = f"""
import ctypes, os, subprocess
print('uid', os.getuid(), os.geteuid())
print([line for line in open('/proc/self/status') if line.startswith('CapEff')])
for target in ('/proc/{os.getpid()}/ns/net', '/proc/1/ns/net'):
    done = subprocess.run(['nsenter', '--net=' + target, 'python3', '-c',
        'import socket; socket.create_connection(("127.0.0.1", {listening_server}), timeout=2)'],
        capture_output=True, text=True)
    print('nsenter', target, done.returncode, done.stderr.strip().splitlines()[-1:])
    try:
        fd = os.open(target, os.O_RDONLY)
        print('setns', ctypes.CDLL(None, use_errno=True).setns(fd, 0), ctypes.get_errno())
    except OSError as error:
        print('open denied', type(error).__name__)
"""
    outcome = await run(tool, code)
    assert "uid 0" not in outcome.output
    assert "CapEff:\\t0000000000000000" in outcome.output
    assert "nsenter /proc/1/ns/net 0" not in outcome.output
    assert f"nsenter /proc/{os.getpid()}/ns/net 0" not in outcome.output
    assert "setns 0 " not in outcome.output


FIRST_UID = 310_000
BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


async def test_a_fork_bomb_is_contained(make_tool: ToolFactory) -> None:
    tool = await make_tool(
        wall_seconds=3, max_processes=16, sandbox_uid=FIRST_UID, sandbox_uids=2, max_sessions=2
    )
    counted = await run(
        tool,
        "import os, time\nn = 0\ntry:\n    for _ in range(200):\n"
        "        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n"
        "        n += 1\nexcept OSError as error:\n    print('stopped', type(error).__name__)\nn",
    )
    assert "stopped BlockingIOError" in counted.output
    assert int(counted.output.splitlines()[-1]) < 16
    bomb = await run(tool, BOMB)
    assert "wall-clock limit" in bomb.output
    for _ in range(50):  # the kernel tears the PID namespace down right after the kill
        if not await asyncio.to_thread(sandbox_processes, FIRST_UID, 2):
            break
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(sandbox_processes, FIRST_UID, 2) == []
    host = await asyncio.create_subprocess_exec("true")
    assert await host.wait() == 0  # the host can still start processes
    assert (await run(tool, "6 * 7")).output == "42"


async def test_no_two_sessions_share_a_uid(make_tool: ToolFactory) -> None:
    """Two tools stand for two Portway processes on one machine (``--workers 2``)."""
    first, second = await make_tool(), await make_tool()
    if os.geteuid() != 0:
        pytest.skip("not root: every session has its own user namespace instead")
    uids = [
        (await run(tool, "import os\nos.getuid()", thread_id=thread)).output
        for tool in (first, second)
        for thread in ("thread_a", "thread_b")
    ]
    assert len(set(uids)) == 4, uids
    assert "0" not in uids


async def test_a_detached_child_does_not_outlive_the_call(make_tool: ToolFactory) -> None:
    tool = await make_tool()
    token = f"98{os.getpid()}"
    code = f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        if os.fork() == 0:
            os.execv('/usr/bin/sleep', ['sleep', '{token}'])
        while True:
            with open('/mnt/data/heartbeat', 'a') as beat:
                beat.write('.')
            time.sleep(0.05)
    os._exit(0)
time.sleep(0.5)
print('started', os.path.getsize('/mnt/data/heartbeat') > 0)
"""
    outcome = await run(tool, code)
    assert "started True" in outcome.output
    assert processes_with(token) == []
    check = (
        "import os, time\nsize = os.path.getsize('heartbeat')\ntime.sleep(1)\n"
        "os.path.getsize('heartbeat') == size"
    )
    assert (await run(tool, check)).output == "True"


async def test_filling_the_disk_stops_at_the_quota(make_tool: ToolFactory) -> None:
    quota = 8 * 1024 * 1024
    tool = await make_tool(disk_bytes=quota)
    code = """
import os, shutil
written = 0
for directory in ('/mnt/data', '/tmp', '/dev/shm', '/', '/dev', '/mnt'):
    try:
        for index in range(64):
            with open(f'{directory}/fill-{index}', 'wb') as handle:
                handle.write(b'x' * 1024 * 1024)
            written += 1024 * 1024
    except OSError as error:
        print('stopped', directory, error.strerror)
print('written', written)
print('total', *(shutil.disk_usage(d).total for d in ('/mnt/data', '/tmp', '/dev/shm')))
"""
    outcome = await run(tool, code)
    for directory in ("/mnt/data", "/tmp", "/dev/shm"):
        assert f"stopped {directory} No space left on device" in outcome.output
    for directory in ("/", "/dev", "/mnt"):
        assert f"stopped {directory} " in outcome.output
    written = int(outcome.output.split("written ")[1].split()[0])
    assert written <= 3 * quota
    assert outcome.output.split("total ")[1].split()[:3] == [str(quota)] * 3


async def test_seccomp_denies_namespaces_tracing_and_io_uring(make_tool: ToolFactory) -> None:
    tool = await make_tool()
    if not tool.status()["seccomp"]:
        service_unavailable("libseccomp is not installed: the sandbox runs without seccomp")
    code = """
import ctypes, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(result):
    return os.strerror(ctypes.get_errno()) if result == -1 else f'ALLOWED {result}'
print('unshare', errno_of(libc.unshare(0x10000000)))
print('ptrace', errno_of(libc.ptrace(0, 0, None, None)))
print('io_uring', errno_of(libc.syscall(425, 8, ctypes.create_string_buffer(120))))
print('keyctl', errno_of(libc.syscall(250, 0, 0, 0, 0)))
done = subprocess.run(['unshare', '--user', '--net', 'true'], capture_output=True, text=True)
print('unshare(1)', done.returncode)
worker = threading.Thread(target=print, args=('thread ok',))
worker.start()
worker.join()
print(subprocess.run(['echo', 'subprocess ok'], capture_output=True, text=True).stdout.strip())
"""
    outcome = await run(tool, code)
    assert "ALLOWED" not in outcome.output
    for call in ("unshare", "ptrace", "io_uring", "keyctl"):
        assert f"{call} Operation not permitted" in outcome.output
    assert "unshare(1) 0" not in outcome.output
    assert "thread ok" in outcome.output and "subprocess ok" in outcome.output
