"""Housekeeping, never fatal: after a run, archived runs beyond ``keep_runs`` go with their
snapshot refs; before each worker, raw logs beyond ``max_logs_mb``."""

from __future__ import annotations

from collections.abc import Callable, Collection

from unattended.contracts.paths import RunPaths, shown_path
from unattended.contracts.settings import Settings


def prune_after_run(
    paths: RunPaths,
    keep_runs: int,
    run_id: str,
    prune_snapshots: Callable[[Collection[str], Collection[str]], int],
) -> str | None:
    """Prune archived runs beyond ``keep_runs`` and, of their snapshots, only this work tree's
    (``prune_snapshots(keep, only)``): another work tree of the repository shares the refs, and
    its runs (maybe live) are not ours to prune; a run whose archive a worker's `git clean`
    erased keeps its snapshots. Whatever the outcome: a done run prunes no more than another.
    Returns the run.log line saying what went (None when nothing did); raises what the pruning
    raised (the caller logs it as a warning)."""
    from unattended.supervisor.run.begin import prune_archived_runs

    removed = prune_archived_runs(paths, keep_runs)
    pruned = prune_snapshots({run_id}, removed)
    if not removed and not pruned:
        return None
    return f"pruned {len(removed)} archived run(s) and {pruned} old snapshot ref(s)"


class RawLogCap:
    """``max_logs_mb``: before each worker the oldest raw logs go until all of them, with room
    for this worker's own cap, fit. The files are listed once per run, then kept up to date."""

    def __init__(self, paths: RunPaths, settings: Settings) -> None:
        self.paths, self.settings = paths, settings
        self._logs = None

    def before_worker(self, number: int) -> str | None:
        """The run.log line saying what went, or None. Never fatal: housekeeping."""
        from unattended.supervisor.records.rawlogs import RawLogs

        s, paths, mb = self.settings, self.paths, 1024 * 1024
        try:
            if self._logs is None:
                self._logs = RawLogs.scan(paths)
            elif number > 1:
                self._logs.add_iteration(number - 1)
            removed = self._logs.prune(int(s.max_logs_mb * mb), int(s.max_iteration_log_mb * mb))
        except OSError as exc:
            return f"warning: could not cap the raw logs: {exc}"
        if not removed:
            return None
        names = [shown_path(path, paths.records) for path, _ in removed]
        listed = ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"
        freed = sum(size for _, size in removed) / mb
        return (
            f"raw logs over max_logs_mb = {s.max_logs_mb:g}: removed the {len(removed)} oldest "
            f"({freed:.1f} MB: {listed}); {self._logs.total / mb:.1f} MB kept"
        )
