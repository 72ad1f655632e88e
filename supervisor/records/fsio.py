"""File-system effects behind one seam, so tests can inject ENOSPC, EPERM or a clock jump.

Every file another process reads is written through :func:`atomic_write`: temp file in the same
directory, fsync, ``os.replace``, fsync of the directory. A reader never sees half a file, and
after a power cut it sees either the old or the new version.
"""

from __future__ import annotations

import os
import time as _time
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class SystemCalls:
    """The system calls the supervisor makes; replace attributes in tests to inject faults."""

    open = staticmethod(os.open)
    write = staticmethod(os.write)
    fsync = staticmethod(os.fsync)
    replace = staticmethod(os.replace)
    close = staticmethod(os.close)
    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


sys_calls = SystemCalls()


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` mode 0700 (the raw worker stream can hold secrets)."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        sys_calls.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: str | bytes, mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    On any failure (ENOSPC included) the temp file is removed and the old file stays intact.
    """
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = sys_calls.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(payload)
        while view:
            written = sys_calls.write(fd, view)
            view = view[written:]
        sys_calls.fsync(fd)
    except BaseException:
        sys_calls.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    sys_calls.close(fd)
    try:
        sys_calls.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def append_line(path: Path, line: str, mode: int = PRIVATE_FILE_MODE) -> None:
    """Append one line (for JSONL records); O_APPEND makes each write land whole at the end."""
    fd = sys_calls.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, mode)
    try:
        sys_calls.write(fd, (line.rstrip("\n") + "\n").encode())
    finally:
        sys_calls.close(fd)
