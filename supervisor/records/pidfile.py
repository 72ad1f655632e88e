"""``.unattended/supervisor.pid``: the daemon's pid and start time, present only while it lives."""

from __future__ import annotations

from pathlib import Path

from unattended.supervisor.records.fsio import atomic_write


def write_pid_file(path: Path, pid: int, create_time: float | None) -> None:
    atomic_write(path, f"{pid} {create_time if create_time is not None else ''}\n".strip() + "\n")
