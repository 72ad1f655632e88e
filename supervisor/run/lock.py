"""The run's singleton lock: ``flock`` on ``<git dir>/unattended.lock``.

It lives in the git dir because a worker may ``git clean -fdx`` the project (and ``.unattended/``
with it). The fd is close-on-exec, so a worker that outlives the daemon never holds the lock.
The lock file holds the owner's pid, for the "already running" message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from unattended.supervisor.records.fsio import open_private_file


class AlreadyRunning(Exception):
    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        super().__init__(f"already running (pid {pid})" if pid else "already running")


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock without waiting; raise AlreadyRunning naming the holder."""
        fd = _open_lock(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(wait_for_holder(self.path)) from None
        os.ftruncate(fd, 0)  # a previous owner's pid must never be reported as ours
        self.fd = fd

    def record_owner(self, pid: int) -> None:
        assert self.fd is not None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{pid}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def is_held_elsewhere(self) -> bool:
        try:
            fd = _open_lock(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)


def _open_lock(path: Path, flags: int) -> int:
    """In the git dir, not through a symlink planted at its name (its O_TRUNC would empty the
    file it points to)."""
    return open_private_file(path, flags, anchor=path.parent)


def wait_for_holder(path: Path, timeout: float = 2.0) -> int | None:
    """The holder writes its pid a moment after taking the lock (once the daemon has forked):
    give it that moment, so a second `start` can name the running pid."""
    import time

    end = time.monotonic() + timeout
    while (pid := holder_pid(path)) is None and time.monotonic() < end:
        time.sleep(0.02)
    return pid


def holder_pid(path: Path) -> int | None:
    try:
        fd = _open_lock(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return int(os.read(fd, 64).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
