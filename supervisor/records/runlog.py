"""``run.log`` for people and ``events.jsonl`` for machines: one event dict, rendered twice by
structlog (a human line and a JSON line).

structlog costs 0.1-0.2 s to import, so it is imported only once the daemon has answered
``start``'s readiness handshake (``RunLog.ready``); events logged before that are kept in memory
with their own time and written then (``run.log`` itself is created at once, so it exists when
``start`` returns). Lines are appended with one ``O_APPEND`` write each, so they land whole
beside other appenders (``unattended step``); the file is reopened when it was moved or removed
(logrotate, ``git clean``), so ``tail -F`` keeps working. The daemon never truncates it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from unattended.contracts.timefmt import from_epoch, utc_iso
from unattended.supervisor.records.fsio import UnsafePath, open_private_file, sys_calls

# Keys of the event dict that steer rendering and are not part of the JSON record.
_HUMAN_ONLY = "_human_only"  # the separator line between runs
_MACHINE_ONLY = "_machine_only"  # fine-grained records (worker_exit...)
_SEPARATOR = "_separator"


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

    def touch(self) -> None:
        self._current_fd()

    def write(self, text: str) -> None:
        sys_calls.write(self._current_fd(), text.encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _LineLogger:
    """structlog's logger at the end of a chain: each rendered event is one appended line, in
    each file on its own (a refused copy must not cost the record its other file)."""

    def __init__(self, *files: _ReopeningFile | None) -> None:
        self.files = [f for f in files if f is not None]

    def msg(self, line: str) -> None:
        for file in self.files:
            with contextlib.suppress(OSError):
                file.write(line + "\n")


def _human_line(_logger: Any, _method: str, event: dict[str, Any]) -> str:
    """``<time> [iter N ]<message>``, or the ``----- run X -----`` separator."""
    if _SEPARATOR in event:
        return f"----- {event[_SEPARATOR]} -----"
    iteration = event.get("iteration")
    prefix = f"{event['time']} iter {iteration} " if iteration else f"{event['time']} "
    return prefix + event["message"]


def _skip(flag: str) -> Any:
    def processor(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
        import structlog

        if event.get(flag):
            raise structlog.DropEvent
        return event

    return processor


def _json_fields(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    event.pop(_MACHINE_ONLY, None)
    return event


def _loggers(
    human: _ReopeningFile, machine: _ReopeningFile, view: _ReopeningFile | None
) -> tuple[Any, Any]:
    import json

    import structlog

    to_human = structlog.wrap_logger(
        _LineLogger(human, view),
        processors=[_skip(_MACHINE_ONLY), _human_line],
        wrapper_class=structlog.BoundLogger,
        cache_logger_on_first_use=True,
    )
    to_machine = structlog.wrap_logger(
        _LineLogger(machine),
        processors=[
            _skip(_HUMAN_ONLY),
            _json_fields,
            structlog.processors.JSONRenderer(serializer=json.dumps, default=str),
        ],
        wrapper_class=structlog.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return to_human, to_machine


class RunLog:
    """One event dict per event: a human line in run.log and a JSON record in events.jsonl."""

    def __init__(
        self, run_log: Path, events: Path, run_id: str | None = None, view: Path | None = None
    ) -> None:
        self._human = _ReopeningFile(run_log)
        self._machine = _ReopeningFile(events)
        # The copy in .unattended/ people tail: best effort, and said to be partial once a
        # worker's `git clean` made it start over.
        note = f"----- (recreated: the whole log is {run_log}) -----\n"
        self._view = _ReopeningFile(view, note) if view is not None and view != run_log else None
        self._refused: set[str] = set()
        self.run_id = run_id
        self.echo: Any = None  # optional callable(str) for foreground runs
        self._pending: list[dict[str, Any]] | None = []  # None once structlog renders
        self._to_human: Any = None
        self._to_machine: Any = None

    def ready(self) -> None:
        """Past the readiness handshake: import structlog and write what was kept."""
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        with contextlib.suppress(OSError):
            self._to_human, self._to_machine = _loggers(self._human, self._machine, self._view)
        for event in pending:
            self._write(event)

    def _record(self, event: dict[str, Any]) -> None:
        if self._pending is not None:
            for file in (self._human, self._view):
                if file is not None:
                    with contextlib.suppress(OSError):
                        file.touch()  # run.log exists once `start` returns
            self._pending.append(event)
            return
        self._write(event)

    def _write(self, event: dict[str, Any]) -> None:
        # A log line must never take the run down; the state file is the source of truth.
        if self._to_human is None:
            return
        with contextlib.suppress(OSError):
            self._to_human.msg(**event)
        with contextlib.suppress(OSError):
            self._to_machine.msg(**event)

    def refused(self, exc: UnsafePath) -> None:
        """A write refused by fsio (a symlink planted in our tree): one warning per path, in
        whichever of run.log and events.jsonl can still be written, and on stderr."""
        if exc.path in self._refused:
            return
        self._refused.add(exc.path)
        message = f"warning: {exc} (remove it)"
        print(f"unattended: {message}", file=sys.stderr, flush=True)
        self.event(message, kind="refused_write", path=exc.path)

    def _base(self, kind: str, iteration: int | None) -> dict[str, Any]:
        epoch = sys_calls.time()
        return {
            "time": utc_iso(from_epoch(epoch)),
            "epoch": round(epoch, 3),
            "run_id": self.run_id,
            "kind": kind,
            "iteration": iteration,
        }

    def event(
        self, message: str, *, iteration: int | None = None, kind: str = "info", **fields: Any
    ) -> None:
        event = self._base(kind, iteration)
        event.update(fields)
        event["message"] = message
        self._record(event)
        if self.echo is not None:
            self.echo(_human_line(None, "", event))

    def machine(self, kind: str, iteration: int | None = None, **fields: Any) -> None:
        """A record for machines only (too fine-grained for people reading run.log)."""
        self._record({**self._base(kind, iteration), **fields, _MACHINE_ONLY: True})

    def separator(self, text: str) -> None:
        self._record({_SEPARATOR: text, _HUMAN_ONLY: True})

    def close(self) -> None:
        self.ready()  # an early end (cannot start) still leaves its lines
        self._human.close()
        self._machine.close()
        if self._view is not None:
            self._view.close()


