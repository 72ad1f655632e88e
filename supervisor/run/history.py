"""Earlier runs' iterations, read back from their archived telemetry, so the runway estimator
can predict the first iterations of a new run from the project's past."""

from __future__ import annotations

from datetime import timedelta

from unattended.contracts.iteration import IterationRecord
from unattended.contracts.paths import RunPaths

RECENT = 20  # the estimator only looks at the last few anyway


def earlier_records(paths: RunPaths, limit: int = RECENT) -> list[IterationRecord]:
    """The last ``limit`` iterations of archived runs, oldest first; unreadable lines skipped."""
    from unattended.supervisor.records.readers import all_telemetry, load_runs

    archived = [run for run in load_runs(paths.project) if not run.current]
    return [
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
        for line in all_telemetry(archived)[-limit:]
    ]
