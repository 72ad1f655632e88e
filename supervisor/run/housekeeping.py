"""After a run: archived runs beyond ``keep_runs`` go with their snapshot refs; a successful run
keeps only its own snapshots. Never fatal: it is housekeeping."""

from __future__ import annotations

from collections.abc import Callable, Collection

from unattended.contracts.paths import RunPaths
from unattended.contracts.status import RunStatus


def prune_after_run(
    paths: RunPaths,
    keep_runs: int,
    run_id: str,
    status: RunStatus,
    prune_snapshots: Callable[[Collection[str]], int],
) -> str | None:
    """Prune; returns the run.log line saying what went (None when nothing did).
    Raises what the pruning raised: the caller logs it as a warning."""
    from unattended.supervisor.run.begin import prune_archived_runs

    removed = prune_archived_runs(paths, keep_runs)
    keep = {run_id}
    if status is not RunStatus.DONE and paths.runs.is_dir():
        keep |= {p.name for p in paths.runs.iterdir() if p.is_dir()}
    pruned = prune_snapshots(keep)
    if not removed and not pruned:
        return None
    return f"pruned {len(removed)} archived run(s) and {pruned} old snapshot ref(s)"
