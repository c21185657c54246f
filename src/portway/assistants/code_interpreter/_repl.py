"""The Python session inside the sandbox (stdlib only; never imported by Portway).

Run by bubblewrap as ``python -I -B -u -S /opt/portway/repl.py <policy-json>``. Before any
model code runs it sets the resource limits and, when started as root (Portway runs as
root and the sandbox has no user namespace), gives up root for the policy's uid/gid.
Then it reads frames (4-byte big-endian length + JSON ``{"code", "nonce"}``) from the
policy's ``control_fd``
and executes each in one persistent globals dict, like a notebook: the last expression
statement is echoed (its ``repr`` unless None). After each cell it flushes stdout and
stderr and writes ``\\0PORTWAY-END <nonce> <status-json>\\n`` to stdout, so Portway knows
where the cell's output ends. Nothing here is a security boundary: the sandbox is.
"""

import sys

MARKER = b"\x00PORTWAY-END "


class CpuLimitExceeded(BaseException):
    """Raised in the cell when its CPU-time allowance (RLIMIT_CPU soft limit) runs out."""


def _limits(policy):  # type: ignore[no-untyped-def]
    import resource

    hard_cpu = policy["session_cpu_seconds"]
    rules = (
        (resource.RLIMIT_CPU, (hard_cpu, hard_cpu)),
        (resource.RLIMIT_AS, (policy["memory_bytes"],) * 2),
        (resource.RLIMIT_FSIZE, (policy["max_file_bytes"],) * 2),
        (resource.RLIMIT_NPROC, (policy["max_processes"],) * 2),
        (resource.RLIMIT_NOFILE, (policy["max_open_files"],) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    )
    for limit, values in rules:
        resource.setrlimit(limit, values)


def _drop_root(policy):  # type: ignore[no-untyped-def]
    import os

    if os.getuid() != 0:
        return  # a user namespace already maps us to an unprivileged user
    uid, gid = policy["uid"], policy["gid"]
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # clears every capability: not root any more
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("could not give up root")


def _compile(source):  # type: ignore[no-untyped-def]
    import ast

    tree = ast.parse(source, "<code>")
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        show = ast.Call(ast.Name("__portway_show__", ast.Load()), [last.value], [])
        tree.body[-1] = ast.copy_location(ast.Expr(show), last)
        ast.fix_missing_locations(tree)
    return compile(tree, "<code>", "exec")


def _show(value):  # type: ignore[no-untyped-def]
    if value is not None:
        print(repr(value))


def _read_exact(fd, size):  # type: ignore[no-untyped-def]
    import os

    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _reap():  # type: ignore[no-untyped-def]
    """Collect the cell's dead children (Portway kills the live ones after each cell)."""
    import os

    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _report(error):  # type: ignore[no-untyped-def]
    import traceback

    # Show the cell's frames only, not this module's.
    report = traceback.TracebackException.from_exception(error)
    items = [report]
    while True:
        nxt = items[-1].__cause__ or items[-1].__context__
        if nxt is None or nxt in items:
            break
        items.append(nxt)
    for item in items:
        item.stack = traceback.StackSummary.from_list(
            [frame for frame in item.stack if frame.filename != __file__]
        )
    sys.stderr.write("".join(report.format()))


def _run_cell(source, namespace, state):  # type: ignore[no-untyped-def]
    import linecache
    import traceback

    linecache.cache["<code>"] = (len(source), None, source.splitlines(True), "<code>")
    try:
        code = _compile(source)
    except SyntaxError:
        traceback.print_exc(limit=0)
        return {"error": True}
    state["running"] = True
    try:
        exec(code, namespace)
    except CpuLimitExceeded:
        return {"error": True, "cpu_limited": True}
    except SystemExit as stop:
        print(f"SystemExit: {stop.code}", file=sys.stderr)
        return {"error": False}
    except BaseException as error:
        _report(error)
        return {"error": True}
    finally:
        state["running"] = False
    return {"error": False}


def main():  # type: ignore[no-untyped-def]
    import builtins
    import json
    import resource
    import signal

    policy = json.loads(sys.argv[1])
    _limits(policy)
    _drop_root(policy)
    for directory in policy["site_dirs"]:
        import site

        site.addsitedir(directory)
    sys.argv = ["<code>"]
    state = {"running": False}

    def on_cpu_limit(signum, frame):  # type: ignore[no-untyped-def]
        if state["running"]:
            raise CpuLimitExceeded()

    signal.signal(signal.SIGXCPU, on_cpu_limit)
    namespace = {"__name__": "__main__", "__builtins__": builtins, "__portway_show__": _show}
    out = sys.stdout.buffer
    status = {"ready": True}
    nonce = policy["hello"]
    while True:
        sys.stdout.flush()
        sys.stderr.flush()
        out.write(MARKER + nonce.encode() + b" " + json.dumps(status).encode() + b"\n")
        out.flush()
        header = _read_exact(policy["control_fd"], 4)
        if header is None:
            return 0
        frame = _read_exact(policy["control_fd"], int.from_bytes(header, "big"))
        if frame is None:
            return 0
        _reap()
        request = json.loads(frame)
        nonce = request["nonce"]
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        soft = min(hard, int(used) + policy["cpu_seconds"] + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        status = _run_cell(request["code"], namespace, state)


if __name__ == "__main__":
    sys.exit(main())
