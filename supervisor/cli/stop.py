"""``unattended stop``: ask one run (or, with ``--all``, every run of this user) to stop."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from unattended.contracts.paths import RunPaths
from unattended.supervisor.cli.common import ProjectOpt, project_dir
from unattended.supervisor.run.registry import list_runs
from unattended.supervisor.views.status import StatusError, echo, load_run_state


def request_stop(project: Path, now: bool, wait: bool, timeout: float | None) -> int:
    from unattended.supervisor.records.liveness import pid_is_alive

    paths = RunPaths(project)
    try:
        state = load_run_state(project)
    except StatusError as exc:
        echo(f"unattended: {exc}", err=True)
        return 2
    if state is None or state.status.terminal or not pid_is_alive(state.pid, state.pid_create_time):
        echo("no active run")
        return 0
    if now:
        try:
            os.kill(state.pid, signal.SIGTERM)
        except ProcessLookupError:
            echo("no active run")
            return 0
        echo(f"stopping now: sent SIGTERM to daemon pid {state.pid}")
    else:
        paths.stop.touch()
        echo("stop requested: the run ends after the current iteration")
    if not wait:
        return 0
    end = None if timeout is None else time.monotonic() + timeout
    while pid_is_alive(state.pid, state.pid_create_time):
        if end is not None and time.monotonic() >= end:
            echo(f"the daemon (pid {state.pid}) is still running after {timeout:g}s", err=True)
            return 1
        time.sleep(0.1)
    try:
        final = load_run_state(project)
    except StatusError:
        final = None
    if final is not None:
        echo(f"final status: {final.status.value}: {final.stop_reason or ''}".rstrip(": "))
    return 0


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
                rc = request_stop(Path(row.project), now, False, None)
            except SystemExit as exc:  # e.g. an unreadable state.json: go on with the others
                rc = exc.code if isinstance(exc.code, int) else 1
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
) -> None:
    """Ask the run to stop: after the current iteration, or --now."""
    if all_runs:
        raise typer.Exit(stop_all(now, wait, timeout))
    raise typer.Exit(request_stop(project_dir(project), now, wait, timeout))
