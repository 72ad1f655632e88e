"""Reading and writing state.json, and telling a live daemon from a dead one."""

from __future__ import annotations

from pathlib import Path

from contracts.paths import RunPaths
from contracts.state import RunState, StateFileError, parse_state
from contracts.status import CRASHED
from supervisor.fsio import atomic_write


def read_state(paths: RunPaths) -> RunState | None:
    """The saved state, or None when the project never ran. Raises StateFileError."""
    try:
        text = paths.state.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"{paths.state}: cannot read: {exc.strerror}") from None
    return parse_state(text, paths.state)


def write_state(paths: RunPaths, state: RunState) -> None:
    atomic_write(paths.state, state.to_json())


def process_create_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
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


def read_pid_file(path: Path) -> tuple[int, float | None] | None:
    try:
        parts = path.read_text().split()
        return int(parts[0]), (float(parts[1]) if len(parts) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def write_pid_file(path: Path, pid: int, create_time: float | None) -> None:
    atomic_write(path, f"{pid} {create_time if create_time is not None else ''}\n".strip() + "\n")
