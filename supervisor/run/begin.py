"""Beginning a run: a new one (archiving the previous run) or resuming a crashed one."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from unattended import __version__
from unattended.contracts.paths import RunPaths, shown_path
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


def chosen_run_id(wanted: str, runs_dir: Path) -> str:
    """``start --run-id``: the caller's id (a Kubernetes Job's name), made unique as the start
    time is when an archived run already has it."""
    run_id, n = wanted, 1
    while (runs_dir / run_id).exists():
        n += 1
        run_id = f"{wanted}-{n}"
    return run_id


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
    return shown_path(dest, paths.project)


# What earlier versions kept in .unattended/ and now lives in the records (RunPaths.records).
OLD_LAYOUT = (
    "state.json",
    "run.log",
    "events.jsonl",
    "telemetry.jsonl",
    "iterations",
    "runs",
    "budget.json",
    "steps.jsonl",
    "advice.json",
    "daemon.stderr",
)


def adopt_old_layout(paths: RunPaths) -> list[str]:
    """Move an earlier version's records from .unattended/ into the git dir, once: while the
    records hold neither a state nor a log. Returns the names moved."""
    if paths.records == paths.root or paths.state.exists() or paths.run_log.exists():
        return []
    if paths.root.is_symlink() or not paths.root.is_dir():
        return []
    moved = []
    ensure_private_dir(paths.records)
    for name in OLD_LAYOUT:
        item, target = paths.root / name, paths.records / name
        if item.exists() and not item.is_symlink() and not target.exists():
            shutil.move(str(item), target)
            moved.append(name)
    return moved


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
    candidates = []
    for folder in dict.fromkeys((paths.state.parent, paths.root)):  # the records, the copy
        try:
            candidates += list(folder.glob(f".{paths.state.name}.*.tmp"))
        except OSError:
            continue
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


def end_leftovers(old: RunState, grace_s: float) -> list[int]:
    """End what a crashed daemon left behind (its worker, the worker's tool processes in
    sessions of their own, a helper), so nothing keeps editing the tree next to the new run's
    workers. Returns the PIDs that were still running.

    Only processes provably the crashed run's are touched: the start time recorded in
    state.json AND its ``UNATTENDED_RUN_ID`` in their environment (``proctree.is_ours``), so a
    reused PID or a forged state.json naming an unrelated process is left alone. The worker
    gets its clean stop first (SIGINT, grace), the rest SIGKILL.
    """
    from unattended.platform_adapters import proctree

    recorded = [(d.pid, d.create_time) for d in old.descendants if d.pid != os.getpid()]
    worker = next((r for r in recorded if r[0] == old.worker_pid), None)
    if worker is None and old.worker_pid and old.worker_started_at is not None:
        # A state.json from before descendants were recorded: the spawn time, whole seconds.
        proc = proctree.process(old.worker_pid)
        created = proc.create_time() if proc is not None and not proctree.is_gone(proc) else 0.0
        if -2.0 <= created - old.worker_started_at.timestamp() <= 10.0:
            worker = (old.worker_pid, created)
    groups = {old.worker_pid} if old.worker_pid else set()  # the worker leads its own session
    ended: list[int] = []
    if worker is not None and proctree.is_ours(*worker, old.run_id, groups):
        proctree.end_tree(worker[0], grace_s)
        ended.append(worker[0])
    rest = [r for r in recorded if r != worker]
    ended += proctree.still_alive(rest, old.run_id, groups)
    proctree.end_recorded(rest, old.run_id, groups)
    return ended


def begin_run(
    paths: RunPaths,
    settings: Settings,
    sources: dict[str, str],
    resume: bool,
    run_id: str | None = None,
) -> RunStart:
    """Decide between resuming and starting fresh, and build the initial state.

    Corrupt or unknown-version state: ``--resume`` is refused (StateFileError), a plain start
    archives it and begins anew.
    """
    ensure_private_dir(paths.root)
    adopted = adopt_old_layout(paths)
    ensure_private_dir(paths.records)
    remove_leftover_temp_files(paths)
    try:
        old = read_state(paths)
    except StateFileError:
        if resume:
            raise
        old = None
    now = datetime.fromtimestamp(sys_calls.time(), UTC).replace(microsecond=0)
    ended: list[int] = []
    if old is not None and not old.status.terminal:
        if pid_is_alive(old.pid, old.pid_create_time) and old.pid != os.getpid():
            raise StateFileError(f"{paths.state}: the run is still alive (pid {old.pid})")
        ended = end_leftovers(old, min(settings.grace_seconds, 5.0))
    pids = ", ".join(str(pid) for pid in ended)
    leftover = f"; ended its processes still running (pid {pids})" if ended else ""
    if resume and old is not None and not old.status.terminal:
        state = old.model_copy(
            update={
                "status": RunStatus.STARTING,
                "updated_at": now,
                "worker_pid": None,
                "worker_started_at": None,
                "descendants": [],
                "resumed_count": old.resumed_count + 1,
                "unattended_version": __version__,
                "max_iterations": settings.max_iterations,
                "settings": settings.model_dump(mode="json"),
                "settings_sources": sources,
            }
        )
        note = (
            f"resuming run {old.run_id} after a crash: iteration counter {old.iteration}, "
            f"deadline {old.deadline:%Y-%m-%dT%H:%M:%SZ}, ${old.cost_usd:.2f} spent so far"
            f"{leftover}{_adopted_note(adopted, paths)}"
        )
        return RunStart(state, True, note, crashed_worker(old))

    archived = archive_previous(paths, old)
    if not resume:
        paths.stop.unlink(missing_ok=True)  # a leftover sentinel must not end the new run
    run_id = chosen_run_id(run_id, paths.runs) if run_id else new_run_id(now, paths.runs)
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
        unattended_version=__version__,
    )
    note = f"new run {run_id}"
    if leftover:
        note += f" (the crashed run {old.run_id}{leftover})"
    if archived:
        note += f" (previous run archived to {archived})"
    if resume:
        note += " (--resume: nothing to resume)"
    return RunStart(state, False, note + _adopted_note(adopted, paths))


def _adopted_note(adopted: list[str], paths: RunPaths) -> str:
    if not adopted:
        return ""
    names = ", ".join(adopted)
    return f" (moved {names} from .unattended/ to {paths.records}, out of a git clean's reach)"
