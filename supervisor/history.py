"""Earlier runs' iterations, read back from their archived telemetry, so the runway estimator
can predict the first iterations of a new run from the project's past."""

from __future__ import annotations

import json
from datetime import timedelta

from contracts.iteration import IterationRecord
from contracts.paths import RunPaths

RECENT = 20  # the estimator only looks at the last few anyway


def earlier_records(paths: RunPaths, limit: int = RECENT) -> list[IterationRecord]:
    """The last ``limit`` iterations of archived runs, oldest first; unreadable lines skipped."""
    from pydantic import ValidationError

    from contracts.telemetry import TelemetryLine

    if not paths.runs.is_dir():
        return []
    lines: list[str] = []
    for run_dir in sorted(p for p in paths.runs.iterdir() if p.is_dir()):
        try:
            lines.extend((run_dir / "telemetry.jsonl").read_text(errors="replace").splitlines())
        except OSError:
            continue
    records = []
    for raw in lines[-limit:]:
        try:
            line = TelemetryLine.model_validate(json.loads(raw))
        except (ValueError, ValidationError):
            continue
        records.append(
            IterationRecord(
                number=line.iteration,
                started_at=line.time - timedelta(seconds=line.duration_s),
                ended_at=line.time,
                duration_s=line.duration_s,
                model=line.model,
                input_tokens=line.input_tokens,
                output_tokens=line.output_tokens,
                cache_creation_tokens=line.cache_creation_tokens,
                cache_read_tokens=line.cache_read_tokens,
                cost_usd=line.total_cost_usd,
            )
        )
    return records
