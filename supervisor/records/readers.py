"""Reading what runs left on disk, for the commands that only look: watch, metrics, report,
doctor, advise.

Everything here is tolerant: a torn last line of telemetry, an archived run without a
state.json, a context-meter file of an older shape are skipped or read as far as they go, never
a traceback. Reading is bounded (tails of files, not whole files) because ``watch`` rereads
every second while a worker may be printing megabytes.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unattended.contracts.paths import RunPaths

if TYPE_CHECKING:
    from unattended.contracts.state import RunState
    from unattended.contracts.telemetry import TelemetryLine
    from unattended.supervisor.worker.stream import ToolCall

TAIL_STEPS = (64 * 1024, 1024 * 1024, 8 * 1024 * 1024)  # bytes read from a stream's end


@dataclass
class RunRecord:
    """One run's files: the current run lives in ``.unattended/``, older ones in ``runs/<id>/``."""

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
        state = parse_state(state_path.read_text(), state_path)
    except FileNotFoundError:
        pass
    except (OSError, StateFileError) as exc:
        error = str(exc)
    telemetry, bad = load_telemetry(tele_path)
    run_id = state.run_id if state else (telemetry[0].run_id if telemetry else root.name)
    return RunRecord(run_id, root, current, state, error, telemetry, bad)


def load_runs(project: Path, archived: bool = True) -> list[RunRecord]:
    """Every run of the project, oldest first; the current (or last) run is the last one."""
    paths = RunPaths(project)
    runs: list[RunRecord] = []
    if archived and paths.runs.is_dir():
        for child in paths.runs.iterdir():
            if child.is_dir():
                run = _load_run(child, current=False)
                if run is not None:
                    runs.append(run)
    runs.sort(key=lambda r: r.started_key)
    current = _load_run(paths.root, current=True)
    if current is not None:
        runs.append(current)
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


@dataclass(frozen=True)
class MeterReading:
    """The context meter's file, read tolerantly (another process writes it)."""

    readings: int | None
    failures: int | None
    last_error: str | None
    tokens: int | None
    percent: float | None
    band: str | None
    session_id: str | None
    time: str | None
    iteration: int | None = None
    window: int | None = None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def read_context_meter(path: Path) -> MeterReading | None:
    """None when there is no file or it is not a JSON object."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    # {"last": {...}}, {"last_reading": {...}} or the flat copies at the top level.
    last = next((raw[k] for k in ("last", "last_reading") if isinstance(raw.get(k), dict)), raw)
    tokens = _num(last.get("tokens"))
    percent = _num(last.get("percent", last.get("pct")))
    readings = _num(raw.get("readings"))
    failures = _num(raw.get("failures"))
    band = last.get("band")
    return MeterReading(
        readings=int(readings) if readings is not None else None,
        failures=int(failures) if failures is not None else None,
        last_error=str(raw["last_error"]) if raw.get("last_error") else None,
        tokens=int(tokens) if tokens is not None else None,
        percent=percent,
        band=band if isinstance(band, str) else None,
        session_id=last.get("session_id") if isinstance(last.get("session_id"), str) else None,
        time=last.get("time") if isinstance(last.get("time"), str) else None,
        iteration=_int_or_none(last.get("iteration")),
        window=_int_or_none(last.get("window")),
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _assistant_tool(line: bytes) -> ToolCall | None:
    from unattended.supervisor.worker.stream import ToolCall, short_arg

    if b'"tool_use"' not in line:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") != "assistant":
        return None
    message = event.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    found = None
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "tool_use":
            name = str(block.get("name") or "?")
            found = ToolCall(name, short_arg(name, block.get("input")))
    return found


def last_tool_call(stream_path: Path) -> ToolCall | None:
    """The latest tool call in a worker's raw stream, read from the file's tail.

    Only the tool name and a short argument (a command, a path, a pattern) come out, never
    file contents. Tries a small tail first and grows it when the last call is further back.
    """
    try:
        fh = stream_path.open("rb")
    except OSError:
        return None
    with fh:
        size = fh.seek(0, os.SEEK_END)
        for step in TAIL_STEPS:
            start = max(0, size - step)
            fh.seek(start)
            lines = fh.read(size - start).split(b"\n")
            if start > 0:
                lines = lines[1:]
            for line in reversed(lines):
                if b'"assistant"' in line[:80]:
                    call = _assistant_tool(line)
                    if call is not None:
                        return call
            if start == 0:
                break
    return None


def fmt_tokens(count: float) -> str:
    """1,234 / 45.6k / 1.23M: compact for narrow screens."""
    if count < 10_000:
        return f"{int(count):,}"
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def text_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """A plain aligned table (no box drawing): stable in files, pipes and narrow terminals."""
    right = right or set()
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def fmt(row: list[str]) -> str:
        cells = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r) for r in rows)])
