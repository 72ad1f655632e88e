"""The raw worker logs of every run of the project, oldest first, with their total size: what
``max_logs_mb`` caps (``safety.logcap`` decides how many go).

The project's logs are listed once, when a run starts; after that each worker's two files are
added as it ends, so keeping the cap costs the same at iteration 10,000 as at iteration 10.
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from pathlib import Path

from unattended.contracts.paths import RunPaths
from unattended.safety.logcap import logs_to_prune

RAW_LOG = re.compile(r"^(\d{4,})\.(jsonl|stderr)$")  # not NNNN.steps.jsonl, NNNN.handoff.md


def _raw_logs_in(directory: Path) -> list[Path]:
    try:
        entries = [p for p in directory.iterdir() if RAW_LOG.match(p.name) and p.is_file()]
    except OSError:
        return []
    return sorted(entries, key=lambda p: (int(RAW_LOG.match(p.name)[1]), p.name))  # type: ignore[index]


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


class RawLogs:
    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self._logs: deque[tuple[Path, int]] = deque()
        self.total = 0

    @classmethod
    def scan(cls, paths: RunPaths) -> RawLogs:
        """Every raw log on disk: archived runs oldest first (as ``prune_archived_runs`` orders
        them), then the current run's iterations."""
        logs = cls(paths)
        runs: list[Path] = []
        with contextlib.suppress(OSError):
            runs = sorted(
                (p for p in paths.runs.iterdir() if p.is_dir() and not p.is_symlink()),
                key=lambda p: p.name.removeprefix("unknown-"),
            )
        for run in runs:
            for path in _raw_logs_in(run / "iterations"):
                logs._add(path)
        for path in _raw_logs_in(paths.iterations):
            logs._add(path)
        return logs

    def _add(self, path: Path) -> None:
        size = _size(path)
        self._logs.append((path, size))
        self.total += size

    def add_iteration(self, number: int) -> None:
        """The files of a worker that has ended."""
        for path in (self.paths.iteration_stdout(number), self.paths.iteration_stderr(number)):
            if path.is_file():
                self._add(path)

    def prune(self, cap: int, room: int) -> list[tuple[Path, int]]:
        """Remove the oldest logs until the rest plus ``room`` fit under ``cap``; returns them."""
        count = logs_to_prune((size for _, size in self._logs), self.total, cap, room)
        removed = []
        for _ in range(count):
            path, size = self._logs.popleft()
            self.total -= size
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)  # unlink never follows a symlink
            removed.append((path, size))
        return removed
