"""Iterations read back from telemetry: earlier runs' (the runway estimator predicts the first
iterations of a new run from the project's past) and, on ``--resume``, the newest of the run
being resumed (the loop keeps a bounded window of its history in memory)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from unattended.contracts.iteration import GitPoint, IterationRecord
from unattended.contracts.paths import RunPaths

if TYPE_CHECKING:
    from unattended.contracts.telemetry import TelemetryLine

RECENT = 20  # the estimator only looks at the last few anyway
TAIL_BYTES = 4 * 1024 * 1024  # a telemetry line is ~1 KB: far more than a window's worth


def record_from_line(line: TelemetryLine) -> IterationRecord:
    """The facts of an iteration a telemetry line keeps (not its result text or tree hash)."""
    return IterationRecord(
        number=line.iteration,
        started_at=line.time - timedelta(seconds=line.duration_s),
        ended_at=line.time,
        duration_s=line.duration_s,
        exit_code=line.exit_code,
        model=line.model,
        input_tokens=line.input_tokens,
        output_tokens=line.output_tokens,
        cache_creation_tokens=line.cache_creation_tokens,
        cache_read_tokens=line.cache_read_tokens,
        cost_usd=line.total_cost_usd,
        usage_source=line.usage_source,
        context_peak_tokens=line.context_peak_tokens,
        context_window=line.context_window,
        git_before=GitPoint(head=line.head_before),
        git_after=GitPoint(head=line.head_after),
        commits=line.commits,
        files_changed=line.files_changed,
        handed_off=line.handed_off,
        permission_denials=line.permission_denials,
    )


def earlier_records(paths: RunPaths, limit: int = RECENT) -> list[IterationRecord]:
    """The last ``limit`` iterations of archived runs, oldest first; unreadable lines skipped."""
    from unattended.supervisor.records.readers import all_telemetry, load_runs

    archived = [run for run in load_runs(paths.project) if not run.current]
    return [record_from_line(line) for line in all_telemetry(archived)[-limit:]]


def resumed_history(paths: RunPaths, limit: int) -> tuple[list[str], list[IterationRecord]]:
    """The run's newest ``limit`` telemetry lines (as written) and their iterations, oldest
    first, read from the end of telemetry.jsonl; unreadable lines skipped."""
    from pydantic import ValidationError

    from unattended.contracts.telemetry import TelemetryLine
    from unattended.supervisor.records.readers import tail_lines

    kept: list[str] = []
    records: list[IterationRecord] = []
    for raw in tail_lines(paths.telemetry, limit, TAIL_BYTES):
        try:
            records.append(record_from_line(TelemetryLine.model_validate_json(raw)))
        except (ValidationError, ValueError):
            continue
        kept.append(raw)
    return kept, records


def first_head(paths: RunPaths) -> str | None:
    """HEAD before the run's first iteration, from the first telemetry line (None: unknown)."""
    from unattended.contracts.telemetry import TelemetryLine

    try:
        with paths.telemetry.open(errors="replace") as fh:
            return TelemetryLine.model_validate_json(fh.readline()).head_before
    except (OSError, ValueError):
        return None
