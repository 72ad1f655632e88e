"""Beginning a run: a new one (archiving the previous run) or resuming a crashed one."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.contracts.state import RunState, StateFileError
from unattended.contracts.status import RunStatus
from unattended.supervisor.records.fsio import ensure_private_dir, sys_calls
from unattended.supervisor.records.liveness import pid_is_alive
from unattended.supervisor.records.state import read_state
from unattended.supervisor.run.crashed import CrashedWorker, crashed_worker


@dataclass(frozen=True)
class RunStart:
    state: RunState
    resumed: bool
    note: str  # one line for run.log: how this run began
    crashed: CrashedWorker | None = None  # the iteration the resumed run's daemon died in


def new_run_id(now: datetime, runs_dir: Path) -> str:
    """The start instant, compact: runs/<run_id>/ is also runs/<started_at>/."""
    base = now.strftime("%Y%m%dT%H%M%SZ")
    run_id, n = base, 1
    while (runs_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def archive_previous(paths: RunPaths, old: RunState | None) -> str | None:
    """Move the previous run's state, iterations and telemetry under runs/<run_id>/.

    run.log is not moved: it keeps growing across runs, with a separator line.
    """
    movable = [paths.state, paths.iterations, paths.telemetry, paths.handoff, paths.context_meter]
    if not any(p.exists() for p in movable):
        return None
    stamp = datetime.fromtimestamp(sys_calls.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = old.run_id if old else f"unknown-{stamp}"  # sorts with run ids once unprefixed
    dest = paths.runs / run_id
    if dest.exists():
        dest = paths.runs / f"{run_id}-{int(sys_calls.time())}"
    ensure_private_dir(dest)
    for item in movable:
        if item.exists():
            shutil.move(str(item), dest / item.name)
    return str(dest.relative_to(paths.project))


def prune_archived_runs(paths: RunPaths, keep: int) -> list[str]:
    """Remove the oldest archived runs beyond ``keep``; returns their run ids."""
    if not paths.runs.is_dir():
        return []
    # Oldest first by the timestamp in the name (`unknown-<ts>` for an unreadable state).
    runs = sorted(
        (p for p in paths.runs.iterdir() if p.is_dir()),
        key=lambda p: p.name.removeprefix("unknown-"),
    )
    doomed = runs[: max(0, len(runs) - keep)]
    for run_dir in doomed:
        shutil.rmtree(run_dir, ignore_errors=True)
    return [p.name for p in doomed]


def remove_leftover_temp_files(paths: RunPaths) -> list[str]:
    """``.state.json.<pid>.tmp`` files a kill between write and rename left behind (their
    writer is dead: never a live process's file being written). Returns the names removed."""
    removed = []
    try:
        candidates = list(paths.root.glob(f".{paths.state.name}.*.tmp"))
    except OSError:
        return []
    for tmp in candidates:
        pid_text = tmp.name.removeprefix(f".{paths.state.name}.").removesuffix(".tmp")
        if not pid_text.isdigit() or (int(pid_text) != os.getpid() and _alive(int(pid_text))):
            continue
        try:
            tmp.unlink()  # a symlink is removed itself, never followed
        except OSError:
            continue
        removed.append(tmp.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: not ours to judge
    return True


def end_leftover_worker(old: RunState, grace_s: float) -> int | None:
    """End the worker a crashed daemon left behind, so it cannot keep editing the tree next
    to the new run's workers. Returns its pid when it was still running, else None.

    The pid must still be that worker: its creation time must match ``worker_started_at``
    (second precision in state.json), or it is a reused PID and is left alone.
    """
    if not old.worker_pid or old.worker_started_at is None or old.worker_pid == os.getpid():
        return None
    from unattended.platform_adapters import proctree

    proc = proctree.process(old.worker_pid)
    if proc is None or proctree.is_gone(proc):
        return None
    try:
        created = proc.create_time()
    except Exception:  # psutil.Error: gone or not ours to look at
        return None
    # psutil's creation time is derived from the boot time (whole seconds): allow for that.
    if not -2.0 <= created - old.worker_started_at.timestamp() <= 10.0:
        return None
    proctree.end_tree(old.worker_pid, grace_s)
    return old.worker_pid


def begin_run(
    paths: RunPaths, settings: Settings, sources: dict[str, str], resume: bool
) -> RunStart:
    """Decide between resuming and starting fresh, and build the initial state.

    Corrupt or unknown-version state: ``--resume`` is refused (StateFileError), a plain start
    archives it and begins anew.
    """
    ensure_private_dir(paths.root)
    remove_leftover_temp_files(paths)
    try:
        old = read_state(paths)
    except StateFileError:
        if resume:
            raise
        old = None
    now = datetime.fromtimestamp(sys_calls.time(), UTC).replace(microsecond=0)
    ended_worker = None
    if old is not None and not old.status.terminal:
        if pid_is_alive(old.pid, old.pid_create_time) and old.pid != os.getpid():
            raise StateFileError(f"{paths.state}: the run is still alive (pid {old.pid})")
        ended_worker = end_leftover_worker(old, min(settings.grace_seconds, 5.0))
    leftover = f"; ended its worker (pid {ended_worker}), still running" if ended_worker else ""
    if resume and old is not None and not old.status.terminal:
        state = old.model_copy(
            update={
                "status": RunStatus.STARTING,
                "updated_at": now,
                "worker_pid": None,
                "worker_started_at": None,
                "resumed_count": old.resumed_count + 1,
                "max_iterations": settings.max_iterations,
                "settings": settings.model_dump(mode="json"),
                "settings_sources": sources,
            }
        )
        note = (
            f"resuming run {old.run_id} after a crash: iteration counter {old.iteration}, "
            f"deadline {old.deadline:%Y-%m-%dT%H:%M:%SZ}, ${old.cost_usd:.2f} spent so far"
            f"{leftover}"
        )
        return RunStart(state, True, note, crashed_worker(old))

    archived = archive_previous(paths, old)
    if not resume:
        paths.stop.unlink(missing_ok=True)  # a leftover sentinel must not end the new run
    run_id = new_run_id(now, paths.runs)
    state = RunState(
        run_id=run_id,
        status=RunStatus.STARTING,
        project=str(paths.project),
        started_at=now,
        updated_at=now,
        deadline=now + timedelta(hours=settings.hours),
        max_iterations=settings.max_iterations,
        model=settings.model,
        settings=settings.model_dump(mode="json"),
        settings_sources=sources,
    )
    note = f"new run {run_id}"
    if leftover:
        note += f" (the crashed run {old.run_id}{leftover})"
    if archived:
        note += f" (previous run archived to {archived})"
    if resume:
        note += " (--resume: nothing to resume)"
    return RunStart(state, False, note)
