"""A seccomp deny-list for the sandbox, compiled with the system's libseccomp (ctypes).

Everything is allowed except system calls a Python session never needs and that widen
the kernel surface or cross process boundaries: tracing, kernel keyrings, eBPF, perf,
io_uring (its operations bypass seccomp), mounting, namespaces (``unshare``, ``setns``,
``clone`` with a namespace flag), modules, kexec, swap, reboot and file handles
(``open_by_handle_at``). They fail with ``EPERM``; ``clone3`` fails with ``ENOSYS`` (its
flags cannot be inspected) so the C library falls back to ``clone``. System calls of a
foreign architecture (x32/ia32 on x86_64) kill the process: libseccomp's default.
The program is handed to bwrap (``--seccomp FD``), which installs it just before the
session's interpreter starts. Without libseccomp, ``compile_filter`` returns None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import tempfile

_ALLOW = 0x7FFF0000
_MASKED_EQ = 7

DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "open_by_handle_at",
    "name_to_handle_at",
    "iopl",
    "ioperm",
    "syslog",
    "fanotify_init",
    "lookup_dcookie",
    "vhangup",
)
# CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
NAMESPACE_FLAGS = (
    0x80,
    0x20000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)


class _ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        library = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    library.seccomp_init.restype = ctypes.c_void_p
    library.seccomp_init.argtypes = (ctypes.c_uint32,)
    library.seccomp_release.argtypes = (ctypes.c_void_p,)
    library.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    library.seccomp_rule_add_array.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    )
    library.seccomp_export_bpf.argtypes = (ctypes.c_void_p, ctypes.c_int)
    return library


def compile_filter() -> bytes | None:
    """The BPF program (bytes for ``bwrap --seccomp``), or None without libseccomp."""
    library = _library()
    if library is None:
        return None
    context = library.seccomp_init(_ALLOW)
    if not context:
        return None
    try:
        denied = _errno_action(errno.EPERM)

        def rule(name: str, action: int, *conditions: _ArgCmp) -> None:
            number = library.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                return  # unknown to this libseccomp/architecture: nothing to deny
            array = (_ArgCmp * len(conditions))(*conditions) if conditions else None
            result = library.seccomp_rule_add_array(context, action, number, len(conditions), array)
            if result < 0:
                raise OSError(-result, f"seccomp rule for {name}")

        for name in DENIED:
            rule(name, denied)
        rule("clone3", _errno_action(errno.ENOSYS))
        for flag in NAMESPACE_FLAGS:
            rule("clone", denied, _ArgCmp(0, _MASKED_EQ, flag, flag))
        with tempfile.TemporaryFile() as program:
            result = library.seccomp_export_bpf(context, program.fileno())
            if result < 0:
                raise OSError(-result, "seccomp_export_bpf")
            program.seek(0)
            return program.read()
    finally:
        library.seccomp_release(context)


def program_fd(program: bytes) -> int:
    """A readable descriptor holding ``program`` (bwrap reads it to the end)."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, program)  # a few KiB: fits the pipe's buffer
    finally:
        os.close(write_end)
    return read_end
