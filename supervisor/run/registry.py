"""The per-user registry of daemons: what ``unattended ps`` lists and ``stop --all`` stops.

One file per daemon, ``$XDG_STATE_HOME/unattended/daemons/<pid>.json`` (default
``~/.local/state/unattended``), written atomically when the daemon starts and removed when it
exits. The registry only says *where* runs are; their status, iteration and cost always come from
each project's ``.unattended/state.json``, the run's single source of truth.

How a row's status is decided (``list_runs``):

- daemon alive and state.json names it: the state's status (``running``, ``waiting``...);
- daemon alive but state.json missing, unreadable or naming another daemon: ``unknown``;
- daemon dead (or its pid reused: different create time) and its run never reached a terminal
  status: ``crashed``, the row stays until a new daemon registers for that project;
- daemon dead but its run ended normally (terminal status) or was superseded by a newer run,
  or the project directory is gone: the file is a leftover, removed and not listed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

STATE_SUBDIR = "unattended"
DAEMONS_SUBDIR = "daemons"


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_STATE_HOME/unattended`` (a relative XDG_STATE_HOME is ignored, as the spec says)."""
    base = environ.get("XDG_STATE_HOME", "")
    if not base or not os.path.isabs(base):
        base = str(Path(environ.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / STATE_SUBDIR


def daemons_dir(root: Path | None = None) -> Path:
    return (root or state_dir()) / DAEMONS_SUBDIR


def register(
    project: Path,
    pid: int,
    pid_create_time: float | None,
    run_id: str,
    started_at: str,
    *,
    root: Path | None = None,
) -> None:
    """Record a daemon. Call after state.json names it; dead entries of the same project go."""
    from unattended.contracts.registry import RegistryEntry
    from unattended.supervisor.records.fsio import atomic_write, ensure_private_dir

    directory = daemons_dir(root)
    ensure_private_dir(directory)
    entry = RegistryEntry(
        project=str(project),
        pid=pid,
        pid_create_time=pid_create_time,
        run_id=run_id,
        started_at=started_at,
    )
    _prune_same_project(directory, entry.project, pid)
    atomic_write(directory / f"{pid}.json", entry.to_json())


def unregister(pid: int, *, root: Path | None = None) -> None:
    """Remove a daemon's file (idempotent; a missing registry is fine)."""
    with contextlib.suppress(OSError):
        (daemons_dir(root) / f"{pid}.json").unlink(missing_ok=True)


def _prune_same_project(directory: Path, project: str, own_pid: int) -> None:
    """A new daemon for a project supersedes the crashed ones before it."""
    from unattended.supervisor.records.liveness import pid_is_alive

    for entry, path in _read_entries(directory)[0]:
        same = entry.project == project and entry.pid != own_pid
        if same and not pid_is_alive(entry.pid, entry.pid_create_time):
            _remove(path)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _read_entries(directory: Path) -> tuple[list, list[str]]:  # ([(RegistryEntry, Path)], problems)
    from unattended.contracts.registry import RegistryError, parse_entry

    entries, problems = [], []
    try:
        files = sorted(directory.glob("*.json"))
    except OSError:
        return [], []
    for path in files:
        try:
            entries.append((parse_entry(path.read_bytes(), path), path))
        except FileNotFoundError:
            continue  # unregistered while we looked
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror}")
        except RegistryError as exc:
            problems.append(str(exc))
    return entries, problems


def scan(root: Path | None = None) -> tuple[list, list[str]]:
    """(RunEntry rows sorted by start time, one line per unreadable registry file)."""
    rows = []
    entries, problems = _read_entries(daemons_dir(root))
    for entry, path in entries:
        row = _join_state(entry)
        if row is None:
            _remove(path)
        else:
            rows.append(row)
    rows.sort(key=lambda r: (r.started_at, r.project, r.pid))
    return rows, problems


def list_runs(root: Path | None = None) -> list:  # -> list[RunEntry]
    """Every registered run of this user, each joined with its project's state.json."""
    return scan(root)[0]


def _join_state(entry):  # noqa: ANN001, ANN202 - (RegistryEntry) -> RunEntry | None
    """The ps row for one registry entry, or None when the entry is a leftover to remove."""
    from unattended.contracts.paths import RunPaths
    from unattended.contracts.registry import RunEntry
    from unattended.contracts.state import StateFileError
    from unattended.contracts.status import CRASHED
    from unattended.supervisor.records.liveness import effective_status, pid_is_alive
    from unattended.supervisor.records.state import read_state

    alive = pid_is_alive(entry.pid, entry.pid_create_time)
    project = Path(entry.project)
    base = {
        "project": entry.project,
        "pid": entry.pid,
        "alive": alive,
        "started_at": entry.started_at,
        "run_id": entry.run_id,
        "pid_create_time": entry.pid_create_time,
    }
    if not alive and not project.is_dir():
        return None
    try:
        state = read_state(RunPaths(project))
        note = None if state is not None else "no state.json"
    except StateFileError as exc:
        state, note = None, str(exc)
    if state is not None and state.pid != entry.pid:
        if not alive:
            return None  # a newer run (or a resumed one) owns the project now
        state, note = None, f"state.json names pid {state.pid}"
    if state is None:
        return RunEntry(**base, status="unknown" if alive else CRASHED, note=note)
    if not alive and state.status.terminal:
        return None  # the run ended normally; only the unregister step was lost
    shown, _ = effective_status(state)
    return RunEntry(
        **base,
        status=shown if alive else CRASHED,
        iteration=state.iteration,
        cost_usd=state.cost_usd,
        max_iterations=state.max_iterations,
        updated_at=state.updated_at,
    )




