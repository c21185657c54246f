"""Bootstrap of the sandboxed child: install the audit-hook policy, then run the code.

Run as ``python -I -S -u _boot.py <policy-json>`` (stdlib only; never imported by Portway).
The policy names the code file and the directories the code may read and write. Once
``sys.addaudithook`` has installed the hook it cannot be removed; the hook refuses:

- every ``socket.*`` event (creating, connecting, binding, resolving),
- creating processes (``os.system``, ``os.exec*``, ``os.fork``, ``os.posix_spawn``,
  ``os.spawn*``, ``subprocess.Popen``, ``pty``) and signalling others (``os.kill``),
- ``ctypes`` (which could call libc directly and bypass every rule here),
- opening, listing or changing paths outside the allowed roots (symlinks are resolved
  with functions bound before the code runs),
- tampering with the hook: ``gc`` object walks, rewriting function code/defaults,
  raising resource limits.

Audit hooks are a CPython mechanism, not a kernel boundary: this is defence in depth
behind the process, rlimits and (when available) network namespace set up by the parent.
The last expression statement is echoed like a notebook cell (its ``repr``, unless None).
"""

import sys


def _policy_hook(read_roots, write_roots):  # type: ignore[no-untyped-def]
    """The audit hook; every name it uses at call time is bound here, not looked up."""
    import os
    import stat

    # Bound now: later monkeypatching of os/posixpath by the code cannot change the checks.
    lstat, readlink, getcwd = os.lstat, os.readlink, os.getcwd
    is_link = stat.S_ISLNK
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    str_type, bytes_type, int_type = str, bytes, int
    any_, len_, isinstance_, denied = any, len, isinstance, PermissionError
    denied_prefixes = ("socket.", "ctypes.", "subprocess.", "_posixsubprocess.", "pty.")
    denied_events = frozenset(
        {
            "os.system",
            "os.exec",
            "os.fork",
            "os.forkpty",
            "os.posix_spawn",
            "os.spawn",
            "os.startfile",
            "os.kill",
            "os.killpg",
            "signal.pthread_kill",
            "gc.get_objects",
            "gc.get_referrers",
            "gc.get_referents",
            "resource.setrlimit",
            "resource.prlimit",
            "sys._current_frames",
            "sys._current_exceptions",
            "sys.remote_exec",
            "cpython.remove_audit_hook",
        }
    )
    guarded_attributes = frozenset(
        {"__code__", "__defaults__", "__kwdefaults__", "__closure__", "__globals__"}
    )
    # event → (index of the path argument(s), whether it modifies the filesystem)
    path_events = {
        "os.listdir": ((0,), False),
        "os.scandir": ((0,), False),
        "os.remove": ((0,), True),
        "os.rmdir": ((0,), True),
        "os.mkdir": ((0,), True),
        "os.rename": ((0, 1), True),
        "os.link": ((0, 1), True),
        "os.symlink": ((1,), True),
        "os.truncate": ((0,), True),
        "os.chmod": ((0,), True),
        "os.chown": ((0,), True),
        "os.chflags": ((0,), True),
        "os.utime": ((0,), True),
        "os.setxattr": ((0,), True),
        "os.removexattr": ((0,), True),
        "os.listxattr": ((0,), False),
        "os.getxattr": ((0,), False),
        "shutil.copyfile": ((0, 1), True),
        "shutil.copytree": ((0, 1), True),
        "shutil.rmtree": ((0,), True),
        "shutil.chown": ((0,), True),
        "shutil.move": ((0, 1), True),
    }

    def resolve(path):  # type: ignore[no-untyped-def]
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        done = []
        pending = path.split("/")[::-1]
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join([*done, part])
            try:
                mode = lstat(candidate).st_mode
            except OSError:
                done.append(part)
                continue
            if is_link(mode):
                hops += 1
                if hops > 40:
                    raise denied("too many symbolic links")
                target = readlink(candidate)
                if target.startswith("/"):
                    done = []
                pending.extend(target.split("/")[::-1])
            else:
                done.append(part)
        return "/" + "/".join(done)

    def inside(path, roots):  # type: ignore[no-untyped-def]
        return any_(path == root or path.startswith(root + "/") for root in roots)

    def check_path(event, raw, writing):  # type: ignore[no-untyped-def]
        if isinstance_(raw, int_type):
            return  # a file descriptor: opening it was checked already
        if raw is None:
            raw = "."  # os.listdir() and friends: the current directory
        if isinstance_(raw, bytes_type):
            raw = raw.decode("utf-8", "surrogateescape")
        if not isinstance_(raw, str_type):
            raise denied(f"{event}: pass paths as str in the sandbox")
        resolved = resolve(raw)
        allowed = write_roots if writing else read_roots
        if not inside(resolved, allowed):
            verb = "write" if writing else "read"
            raise denied(f"the sandbox may not {verb} {raw!r}")

    def hook(event, args):  # type: ignore[no-untyped-def]
        if event == "open":
            path = args[0]
            mode = args[1] if len_(args) > 1 else None
            flags = args[2] if len_(args) > 2 else 0
            if isinstance_(mode, str_type):
                writing = any_(flag in mode for flag in "wax+")
            else:
                writing = isinstance_(flags, int_type) and bool(flags & write_flags)
            check_path(event, path, writing)
        elif event in path_events:
            positions, writing = path_events[event]
            for position in positions:
                if position < len_(args):
                    check_path(event, args[position], writing)
        elif event in denied_events or event.startswith(denied_prefixes):
            raise denied(f"{event} is not allowed in the sandbox")
        elif event == "object.__setattr__" and len_(args) > 1 and args[1] in guarded_attributes:
            raise denied("rewriting functions is not allowed in the sandbox")

    return hook


def _compile(source):  # type: ignore[no-untyped-def]
    import ast

    tree = ast.parse(source, "<code>")
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        show = ast.Call(ast.Name("__portway_show__", ast.Load()), [last.value], [])
        tree.body[-1] = ast.copy_location(ast.Expr(show), last)
        ast.fix_missing_locations(tree)
    return compile(tree, "<code>", "exec")


def _real(paths):  # type: ignore[no-untyped-def]
    import os

    return tuple(os.path.realpath(path) for path in paths if path)


def _read_roots(policy):  # type: ignore[no-untyped-def]
    """The policy's roots plus this interpreter's own installation (stdlib, site-packages)."""
    prefixes = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    return _real([*policy["read_roots"], *policy["write_roots"], *prefixes])


def _show(value):  # type: ignore[no-untyped-def]
    if value is not None:
        print(repr(value))


def _chained(report):  # type: ignore[no-untyped-def]
    seen = []
    while True:
        report = report.__cause__ or report.__context__
        if report is None or report in seen:
            return seen
        seen.append(report)


def main():  # type: ignore[no-untyped-def]
    import json
    import linecache
    import traceback

    policy = json.loads(sys.argv[1])
    with open(policy["script"], encoding="utf-8") as handle:
        source = handle.read()
    # Tracebacks show the code's lines without reading a file.
    linecache.cache["<code>"] = (len(source), None, source.splitlines(True), "<code>")
    try:
        code = _compile(source)
    except SyntaxError:
        traceback.print_exc(limit=0)
        return 1
    sys.argv = ["<code>"]
    sys.addaudithook(_policy_hook(_read_roots(policy), _real(policy["write_roots"])))
    import builtins

    namespace = {"__name__": "__main__", "__builtins__": builtins, "__portway_show__": _show}
    originals = dict(vars(builtins))
    try:
        exec(code, namespace)
    except SystemExit:
        raise
    except BaseException as error:
        vars(builtins).update(originals)  # the code may have replaced some; report with ours
        # Show the code's frames only: not this bootstrap's, not the policy hook's.
        report = traceback.TracebackException.from_exception(error)
        for item in (report, *_chained(report)):
            item.stack = traceback.StackSummary.from_list(
                [frame for frame in item.stack if frame.filename != __file__]
            )
        sys.stderr.write("".join(report.format()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
