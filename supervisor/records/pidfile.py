"""``.unattended/supervisor.pid``: the daemon's pid and start time, present only while it lives."""

from __future__ import annotations

from pathlib import Path

from unattended.supervisor.records.fsio import atomic_write


def read_pid_file(path: Path) -> tuple[int, float | None] | None:
    try:
        parts = path.read_text().split()
        return int(parts[0]), (float(parts[1]) if len(parts) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def write_pid_file(path: Path, pid: int, create_time: float | None) -> None:
    atomic_write(path, f"{pid} {create_time if create_time is not None else ''}\n".strip() + "\n")
