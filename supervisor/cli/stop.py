"""``unattended stop``: ask one run (or, with ``--all``, every run of this user) to stop."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from unattended.contracts.paths import RunPaths
from unattended.supervisor.cli.common import ProjectOpt, fail, project_dir
from unattended.supervisor.run.registry import list_runs
from unattended.supervisor.views.status import StatusError, echo, load_run_state


def request_stop(
    project: Path,
    now: bool,
    wait: bool,
    timeout: float | None,
    *,
    json_out: bool = False,
    name_project: bool = True,
) -> int:
    """Ask the run in ``project`` to stop. Human lines name the project (``--all`` prefixes its
    own); with ``json_out`` stdout gets one JSON document and the waiting lines go to stderr."""
    from unattended.supervisor.records.liveness import pid_is_alive

    paths = RunPaths(project)
    where = f" in {project}" if name_project else ""
    doc: dict[str, Any] = {"project": str(project), "active": False, "requested": None}

    def say(text: str) -> None:
        if not json_out:
            echo(text)

    def done(code: int) -> int:
        if json_out:
            echo(json.dumps(doc))
        return code

    try:
        state = load_run_state(project)
    except StatusError as exc:
        echo(f"unattended: {exc}", err=True)
        return 2
    if state is None or state.status.terminal or not pid_is_alive(state.pid, state.pid_create_time):
        say(f"no active run{where}")
        return done(0)
    doc.update(active=True, run_id=state.run_id, pid=state.pid)
    if now:
        if not _holds_the_lock(project, state.pid):
            echo(
                f"unattended: not signalling pid {state.pid}: it does not hold this project's "
                "run lock, so it is not this run's daemon (state.json is stale or forged)",
                err=True,
            )
            return 1
        try:
            os.kill(state.pid, signal.SIGTERM)
        except ProcessLookupError:
            doc["active"] = False
            say(f"no active run{where}")
            return done(0)
        doc["requested"] = "now"
        say(f"stopping now: sent SIGTERM to daemon pid {state.pid}{where}")
    else:
        from unattended.supervisor.records.fsio import open_private_file

        try:  # never through a symlink planted at the sentinel's name
            os.close(open_private_file(paths.stop, os.O_WRONLY | os.O_CREAT))
        except OSError as exc:
            echo(f"unattended: cannot request the stop: {exc}", err=True)
            return 2
        doc["requested"] = "after_iteration"
        say(f"stop requested{where}: the run ends after the current iteration")
    if not wait:
        return done(0)
    code = _wait_one(project, state, timeout, progress=lambda line: echo(line, err=json_out))
    doc["timed_out"] = code != 0
    try:
        final = load_run_state(project)
    except StatusError:
        final = None
    if code == 0 and final is not None:
        doc.update(final_status=final.status.value, stop_reason=final.stop_reason)
        say(f"final status: {final.status.value}: {final.stop_reason or ''}".rstrip(": "))
    return done(code)


def _wait_one(project: Path, state: Any, timeout: float | None, progress: Any) -> int:
    """Wait for the daemon to exit, saying what it waits for: one line per change of the run's
    status, iteration or worker (plain lines, no colour or spinner: they read the same in a
    terminal, a pipe and a log). Exit 1 when it still runs after ``timeout`` seconds."""
    from unattended.supervisor.records.liveness import pid_is_alive

    end = None if timeout is None else time.monotonic() + timeout
    shown = None
    while pid_is_alive(state.pid, state.pid_create_time):
        try:
            current = load_run_state(project) or state
        except StatusError:
            current = state
        seen = (current.status.value, current.iteration, current.worker_pid)
        if seen != shown:
            shown = seen
            progress(_waiting_line(current))
        if end is not None and time.monotonic() >= end:
            echo(f"the daemon (pid {state.pid}) is still running after {timeout:g}s", err=True)
            return 1
        time.sleep(0.2)
    return 0


def _holds_the_lock(project: Path, pid: int | None) -> bool:
    """A daemon is provably ours when it holds the project's run lock (flock in the git dir)
    and the lock names it: a pid in state.json alone may name any process."""
    from unattended.contracts.paths import lock_path
    from unattended.supervisor.git.facts import GitError, locate_repo
    from unattended.supervisor.run.lock import RunLock, holder_pid

    try:
        _, git_dir, common = locate_repo(project)
    except (GitError, OSError):
        return False
    for directory in dict.fromkeys(d for d in (git_dir, common) if d is not None):
        lock = RunLock(lock_path(directory))
        if lock.is_held_elsewhere() and holder_pid(lock.path) == pid:
            return True
    return False


def _waiting_line(state: Any) -> str:
    worker = (
        f"worker pid {state.worker_pid} still running" if state.worker_pid else "no worker running"
    )
    return (
        f"waiting for daemon pid {state.pid} to exit: {state.status.value}, "
        f"iteration {state.iteration}, {worker}"
    )


def stop_all(now: bool, wait: bool, timeout: float | None, *, root: Path | None = None) -> int:
    """``unattended stop --all``: ask every live run of this user to stop.

    Every run is asked first (one line each, prefixed with its project and pid); with ``--wait``
    all of them are then awaited together, so ``--timeout`` bounds the whole command rather than
    each run in turn (a plain stop of one run must not delay the request to the next by an
    iteration). Exit 1 when some daemon still runs after the timeout, else the worst exit code
    of the individual requests (0 normally).
    """
    live = [row for row in list_runs(root) if row.alive]
    if not live:
        typer.echo("no active runs")
        return 0
    code = 0
    for row in live:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            try:
                rc = request_stop(Path(row.project), now, False, None, name_project=False)
            except (typer.Exit, SystemExit) as exc:  # e.g. an unreadable state.json: go on
                code = getattr(exc, "exit_code", getattr(exc, "code", 1))
                rc = code if isinstance(code, int) else 1
        said = "; ".join(line for line in buffer.getvalue().splitlines() if line.strip())
        typer.echo(f"{row.project} (pid {row.pid}): {said or 'stop requested'}")
        code = max(code, rc)
    if wait:
        code = max(code, _wait_all(live, timeout))
    return code


def _wait_all(rows: list, timeout: float | None) -> int:
    from unattended.contracts.paths import RunPaths
    from unattended.contracts.state import StateFileError
    from unattended.supervisor.records.liveness import pid_is_alive
    from unattended.supervisor.records.state import read_state

    end = None if timeout is None else time.monotonic() + timeout
    pending = list(rows)
    while pending:
        for row in list(pending):
            if pid_is_alive(row.pid, row.pid_create_time):
                continue
            pending.remove(row)
            try:
                final = read_state(RunPaths(Path(row.project)))
            except StateFileError as exc:
                typer.echo(f"{row.project} (pid {row.pid}): exited; {exc}")
                continue
            if final is None:
                typer.echo(f"{row.project} (pid {row.pid}): exited")
            else:
                reason = f": {final.stop_reason}" if final.stop_reason else ""
                typer.echo(f"{row.project} (pid {row.pid}): final status {final.status}{reason}")
        if pending and end is not None and time.monotonic() >= end:
            for row in pending:
                typer.echo(
                    f"unattended: {row.project}: the daemon (pid {row.pid}) is still running "
                    f"after {timeout:g}s",
                    err=True,
                )
            return 1
        if pending:
            time.sleep(0.1)
    return 0


def stop(
    project: ProjectOpt = None,
    now: Annotated[bool, typer.Option("--now", help="End the current worker too.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Return when the daemon exited.")] = False,
    timeout: Annotated[
        float | None, typer.Option(help="With --wait: give up after S seconds (exit 1).")
    ] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Stop every run of this user (see `unattended ps`).")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON document: what was asked, the outcome.")
    ] = False,
) -> None:
    """Ask the run to stop: after the current iteration, or --now."""
    if all_runs:
        if json_out:
            fail("--json is for one run; see `unattended ps --json` for every run")
        raise typer.Exit(stop_all(now, wait, timeout))
    code = request_stop(project_dir(project), now, wait, timeout, json_out=json_out)
    raise typer.Exit(code)
