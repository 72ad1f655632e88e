"""Telling a live daemon from a dead one: a pid, its start time, and a zombie or a reused pid."""

from __future__ import annotations

from unattended.contracts.state import RunState
from unattended.contracts.status import CRASHED


def process_create_time(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch, as psutil counts it (`pid_is_alive`
    compares the two). On Linux read from /proc as psutil does, without importing psutil: the
    daemon records its own before `start` returns, and the import alone cost ~10 ms there."""
    found = _proc_create_time(pid)
    if found is not None:
        return found
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _proc_create_time(pid: int) -> float | None:
    import os

    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rpartition(b")")[2].split()
        with open("/proc/stat", "rb") as fh:
            btime = next(float(ln.split()[1]) for ln in fh if ln.startswith(b"btime"))
        return float(fields[19]) / os.sysconf("SC_CLK_TCK") + btime  # starttime, in ticks
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def pid_is_alive(pid: int | None, create_time: float | None) -> bool:
    """True when ``pid`` is the same live process that recorded ``create_time``.

    A zombie counts as dead (in containers PID 1 may never reap an orphaned daemon); a process
    of another user (EPERM) counts as alive; a reused PID (different create time) is dead.
    """
    if not pid or pid <= 0:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return not (create_time is not None and abs(proc.create_time() - create_time) > 0.01)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def effective_status(state: RunState) -> tuple[str, bool]:
    """(status to show, daemon alive). Non-terminal state with a dead daemon shows 'crashed'."""
    alive = pid_is_alive(state.pid, state.pid_create_time)
    if state.status.terminal:
        return state.status.value, alive
    return (state.status.value if alive else CRASHED), alive
