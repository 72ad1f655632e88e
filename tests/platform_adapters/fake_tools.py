"""Fake OS tools for the adapter tests: small sh scripts on a temp PATH that record their argv.

Each invocation writes `<record_dir>/<name>.<pid>.argv` (arguments NUL-separated, so spaces and
newlines survive) before doing what the test asked: exit with a code, or run the wrapped command
like the real `systemd-inhibit` does (as a child it waits for, not exec: the real tool stays the
parent of the command, and `inhibitor_alive` recognises it by name).
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import psutil


def write_tool(bin_dir: Path, name: str, body: str) -> Path:
    """An executable `/bin/sh` script `bin_dir/name` running `body`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def recording_tool(bin_dir: Path, name: str, record_dir: Path, then: str = "exit 0") -> Path:
    """A tool that records its argv into `record_dir`, then runs the shell code `then`."""
    record_dir.mkdir(parents=True, exist_ok=True)
    record = shlex.quote(str(record_dir / name))
    counter = shlex.quote(str(record_dir / f".{name}.sequence"))
    # A sequence number orders the calls (file timestamps tie within a clock tick). Shell
    # builtins only: some tests run the tool with nothing else on PATH. Calls of one tool are
    # sequential in every test, so the counter needs no lock.
    sequence = f"n=0; read n < {counter} 2>/dev/null; n=$((n + 1)); echo $n > {counter}"
    record_call = f"printf '%s\\0' \"$@\" > {record}.$$.$n.argv"
    return write_tool(bin_dir, name, f"{sequence}\n{record_call}\n{then}")


def fake_systemd_inhibit(bin_dir: Path, record_dir: Path) -> Path:
    """Like the real one with logind present: skip our --options, run the command, wait for it."""
    skip = 'while [ $# -gt 0 ]; do case "$1" in --*) shift ;; *) break ;; esac; done'
    return recording_tool(bin_dir, "systemd-inhibit", record_dir, f'{skip}\n"$@"\nexit $?')


def recorded(record_dir: Path, name: str) -> list[list[str]]:
    """The argv of every recorded invocation of `name`, oldest first."""
    files = sorted(  # NAME.PID.SEQUENCE.argv
        record_dir.glob(f"{name}.*.argv"), key=lambda p: int(p.name.split(".")[-2])
    )
    out = []
    for path in files:
        data = path.read_bytes()
        out.append(data.decode("utf-8", "surrogateescape").split("\0")[:-1] if data else [])
    return out


def path_with(bin_dir: Path, *, system: bool = True) -> str:
    """PATH with `bin_dir` first, then (optionally) only the system dirs holding sh, tail, env."""
    dirs = [str(bin_dir)]
    if system:
        dirs += ["/usr/bin", "/bin"]
    return os.pathsep.join(dirs)


def gone(pid: int) -> bool:
    """Dead, or a zombie (an orphan re-parented to a PID 1 that never reaps counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Wait until every pid is gone; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if not gone(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if not gone(pid)]


def tree(pid: int) -> list[int]:
    """`pid` and its live descendants (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []
