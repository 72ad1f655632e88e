"""``run.log`` for people and ``events.jsonl`` for machines, written side by side.

Lines are flushed as written; the file is reopened when it was moved or removed (logrotate,
``git clean``), so ``tail -F`` keeps working. The daemon never truncates it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from unattended.contracts.timefmt import from_epoch, utc_iso
from unattended.supervisor.records.fsio import UnsafePath, open_private_file, sys_calls


class _ReopeningFile:
    """An append-only file that notices when its path no longer points at the open inode.

    ``on_recreate`` is written first whenever the file had to be created anew after it
    vanished (the copy of run.log in a ``.unattended/`` that a worker deleted)."""

    def __init__(self, path: Path, on_recreate: str | None = None) -> None:
        self.path = path
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._on_recreate = on_recreate
        self._opened_once = False

    def _open(self) -> int:
        fd = open_private_file(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        st = os.fstat(fd)
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)
        if self._opened_once and self._on_recreate and st.st_size == 0:
            sys_calls.write(fd, self._on_recreate.encode())
        self._opened_once = True
        return fd

    def _current_fd(self) -> int:
        if self._fd is None:
            return self._open()
        try:
            st = os.lstat(self.path)  # a symlink put in its place is "moved" too: reopen, refuse
            moved = (st.st_dev, st.st_ino) != self._ino
        except FileNotFoundError:
            moved = True
        if moved:
            self.close()
            return self._open()
        return self._fd

    def write(self, text: str) -> None:
        sys_calls.write(self._current_fd(), text.encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class RunLog:
    """One human line and one JSON record per event."""

    def __init__(
        self, run_log: Path, events: Path, run_id: str | None = None, view: Path | None = None
    ) -> None:
        self._human = _ReopeningFile(run_log)
        self._machine = _ReopeningFile(events)
        # The copy in .unattended/ people tail: best effort, and said to be partial once a
        # worker's `git clean` made it start over.
        note = f"----- (recreated: the whole log is {run_log}) -----\n"
        self._view = _ReopeningFile(view, note) if view is not None and view != run_log else None
        self.run_id = run_id
        self.echo: Any = None  # optional callable(str) for foreground runs
        self._refused: set[str] = set()

    def refused(self, exc: UnsafePath) -> None:
        """A write refused by fsio (a symlink planted in our tree): one warning per path, in
        whichever of run.log and events.jsonl can still be written, and on stderr."""
        if exc.path in self._refused:
            return
        self._refused.add(exc.path)
        message = f"warning: {exc} (remove it)"
        print(f"unattended: {message}", file=sys.stderr, flush=True)
        self.event(message, kind="refused_write", path=exc.path)

    def event(
        self, message: str, *, iteration: int | None = None, kind: str = "info", **fields: Any
    ) -> None:
        epoch = sys_calls.time()
        now = utc_iso(from_epoch(epoch))
        prefix = f"{now} iter {iteration} " if iteration else f"{now} "
        line = prefix + message
        record = {"time": now, "epoch": round(epoch, 3), "run_id": self.run_id}
        record.update(kind=kind, iteration=iteration)
        record.update(fields)
        record["message"] = message
        # A log line must never take the run down; the state file is the source of truth. Each
        # file on its own: a refused run.log (a planted symlink) still leaves events.jsonl.
        self._write_human(line + "\n")
        with contextlib.suppress(OSError):
            self._machine.write(json.dumps(record, default=str) + "\n")
        if self.echo is not None:
            self.echo(line)

    def machine(self, kind: str, iteration: int | None = None, **fields: Any) -> None:
        """A record for machines only (too fine-grained for people reading run.log)."""
        epoch = sys_calls.time()
        record = {"time": utc_iso(from_epoch(epoch)), "epoch": round(epoch, 3)}
        record.update(run_id=self.run_id, kind=kind, iteration=iteration, **fields)
        with contextlib.suppress(OSError):
            self._machine.write(json.dumps(record, default=str) + "\n")

    def separator(self, text: str) -> None:
        self._write_human(f"----- {text} -----\n")

    def _write_human(self, text: str) -> None:
        with contextlib.suppress(OSError):
            self._human.write(text)
        if self._view is not None:
            with contextlib.suppress(OSError):
                self._view.write(text)

    def close(self) -> None:
        self._human.close()
        self._machine.close()
        if self._view is not None:
            self._view.close()


def utc_iso_now() -> str:
    from unattended.contracts.timefmt import from_epoch

    return utc_iso(from_epoch(sys_calls.time()))
