"""Reading what runs left on disk, for the commands that only look: watch, metrics, report,
doctor, advise.

Everything here is tolerant: a torn last line of telemetry, an archived run without a
state.json, a context-meter file of an older shape are skipped or read as far as they go, never
a traceback. Reading is bounded (tails of files, not whole files) because ``watch`` rereads
every second while a worker may be printing megabytes.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from unattended.contracts.paths import RunPaths

if TYPE_CHECKING:
    from unattended.contracts.state import RunState
    from unattended.contracts.telemetry import TelemetryLine



@dataclass
class RunRecord:
    """One run's files: the current run's are in the records (``RunPaths.records``), older
    ones in ``runs/<id>/`` there."""

    run_id: str
    root: Path
    current: bool
    state: RunState | None = None
    state_error: str | None = None
    telemetry: list[TelemetryLine] = field(default_factory=list)
    bad_lines: int = 0

    @property
    def iterations_dir(self) -> Path:
        return self.root / "iterations"

    @property
    def started_key(self) -> str:
        """Sort key: the start instant when known, else the id (which is the start instant)."""
        if self.state is not None:
            return self.state.started_at.strftime("%Y%m%dT%H%M%SZ")
        return self.run_id


def load_telemetry(path: Path) -> tuple[list[TelemetryLine], int]:
    """(valid lines in file order, number of unreadable lines); ([], 0) when there is no file."""
    from pydantic import ValidationError

    from unattended.contracts.telemetry import TelemetryLine

    try:
        text = path.read_text(errors="replace")
    except OSError:
        return [], 0
    lines: list[TelemetryLine] = []
    bad = 0
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            lines.append(TelemetryLine.model_validate_json(raw))
        except (ValidationError, ValueError):
            bad += 1
    return lines, bad


def _load_run(root: Path, current: bool) -> RunRecord | None:
    from unattended.contracts.state import StateFileError, parse_state

    state_path = root / "state.json"
    tele_path = root / "telemetry.jsonl"
    if not state_path.exists() and not tele_path.exists():
        return None
    state = None
    error = None
    try:
        state = parse_state(state_path.read_bytes(), state_path)
    except FileNotFoundError:
        pass
    except (OSError, StateFileError) as exc:
        error = str(exc)
    telemetry, bad = load_telemetry(tele_path)
    run_id = state.run_id if state else (telemetry[0].run_id if telemetry else root.name)
    return RunRecord(run_id, root, current, state, error, telemetry, bad)


def load_runs(
    project: Path, archived: bool = True, warn: Callable[[str], None] | None = None
) -> list[RunRecord]:
    """Every run of the project, oldest first; the current (or last) run is the last one.

    A run whose state.json cannot be read is still listed (its telemetry counts); ``warn``
    hears one line per such file, naming it and what to do."""
    paths = RunPaths(project)
    runs: list[RunRecord] = []
    if archived and paths.runs.is_dir():
        for child in paths.runs.iterdir():
            if child.is_dir():
                run = _load_run(child, current=False)
                if run is not None:
                    runs.append(run)
    runs.sort(key=lambda r: r.started_key)
    current = _load_run(paths.records, current=True)
    if current is not None:
        runs.append(current)
    if warn is not None:
        for run in runs:
            if run.state_error:
                warn(f"warning: {run.state_error}")
    return runs


def all_telemetry(runs: list[RunRecord]) -> list[TelemetryLine]:
    return [line for run in runs for line in run.telemetry]


def tail_lines(path: Path, count: int, max_bytes: int = 256 * 1024) -> list[str]:
    """The last ``count`` lines of a text file, reading at most ``max_bytes`` from its end."""
    if count <= 0:
        return []
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first one is cut
    return list(deque(lines, maxlen=count))


def run_log_lines(path: Path, since: str | None, until: str | None = None) -> list[str]:
    """run.log lines stamped within [since, until] (ISO strings compare in time order).

    run.log keeps growing across runs, so a run's own lines are found by their timestamps.
    """
    out: list[str] = []
    try:
        fh = path.open("r", errors="replace")
    except OSError:
        return out
    with fh:
        for raw in fh:
            line = raw.rstrip("\n")
            stamp = line.split(" ", 1)[0]
            if len(stamp) != 20 or not stamp.endswith("Z"):
                continue  # separators and continuation lines
            if since and stamp < since:
                continue
            if until and stamp > until:
                continue
            out.append(line)
    return out
















