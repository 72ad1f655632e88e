"""A worker's raw stdout on disk, capped: the head and the tail are kept, the middle dropped.

Memory stays bounded whatever the worker prints: past the head, bytes go to a tail file that
is rotated (``.tail`` → ``.tail.old``) whenever it reaches half the cap, and on ``close()`` the
last half-cap of tail bytes is appended after a marker line saying how much was dropped.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from unattended.supervisor.records.fsio import open_private_file

COPY_CHUNK = 1 << 20
KEEP_WHEN_FULL = 64 * 1024


class CappedLog:
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.half = max(1, max_bytes // 2)
        self.written = 0  # bytes received
        self.dropped = 0
        self._main = open_private_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        self._head_left = self.half
        self._tail_path = path.with_name(path.name + ".tail")
        self._old_path = path.with_name(path.name + ".tail.old")
        self._tail: int | None = None
        self._tail_size = 0
        self._closed = False
        self.full = False  # the disk filled up: nothing more is written, the stream still parsed

    def write(self, chunk: bytes) -> None:
        self.written += len(chunk)
        if self.full:
            return
        try:
            self._write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            self._on_disk_full()

    def _on_disk_full(self) -> None:
        """Give back space at once (the tail, and the head beyond its first 64 KiB), so that
        state.json and run.log can still record why the run ends."""
        self.full = True
        os.ftruncate(self._main, min(os.fstat(self._main).st_size, KEEP_WHEN_FULL))
        if self._tail is not None:
            os.close(self._tail)
            self._tail = None
        self._tail_path.unlink(missing_ok=True)
        self._old_path.unlink(missing_ok=True)

    def _write(self, chunk: bytes) -> None:
        if self._head_left > 0:
            head, chunk = chunk[: self._head_left], chunk[self._head_left :]
            os.write(self._main, head)
            self._head_left -= len(head)
        while chunk:
            if self._tail is None or self._tail_size >= self.half:
                self._rotate()
            room = self.half - self._tail_size
            piece, chunk = chunk[:room], chunk[room:]
            os.write(self._tail, piece)  # type: ignore[arg-type]
            self._tail_size += len(piece)

    def _rotate(self) -> None:
        if self._tail is not None:
            os.close(self._tail)
            os.replace(self._tail_path, self._old_path)
        self._tail = open_private_file(self._tail_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        self._tail_size = 0

    def close(self) -> None:
        """Append the kept tail after a marker line; remove the tail files."""
        if self._closed:
            return
        self._closed = True
        if self.full:
            self.dropped = self.written - self.half
            os.close(self._main)
            return
        if self._tail is not None:
            os.close(self._tail)
            old_keep = self.half - self._tail_size if self._old_path.exists() else 0
            kept = self._tail_size + old_keep
            self.dropped = self.written - self.half - kept
            marker = {"type": "unattended_truncated", "dropped_bytes": self.dropped}
            os.write(self._main, b"\n" + json.dumps(marker).encode() + b"\n")
            if old_keep:
                self._copy_tail(self._old_path, old_keep)
            self._copy_tail(self._tail_path, self._tail_size)
            self._tail_path.unlink(missing_ok=True)
            self._old_path.unlink(missing_ok=True)
        os.close(self._main)

    def _copy_tail(self, source: Path, count: int) -> None:
        with os.fdopen(open_private_file(source, os.O_RDONLY), "rb") as fh:
            if count:
                fh.seek(-count, os.SEEK_END)
            while count > 0:
                data = fh.read(min(COPY_CHUNK, count))
                if not data:
                    break
                os.write(self._main, data)
                count -= len(data)
