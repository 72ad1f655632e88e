"""``unattended step``: a worker reports a finished step of its task.

Appends ``Step N completed: Tokens: X.X%; Status: OK, <action>`` to ``run.log`` (with the
daemon's timestamp prefix, as one O_APPEND write, so it interleaves safely with the daemon's
lines) and records the step in the iteration's ``steps.jsonl`` for the iteration record.
Compatible with the step-tracking design this product absorbs; X.X is the tokens as a percent
of the current model's context window (200000 when unknown).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

STATUSES = ("OK", "NOK")


def step(
    complete: Annotated[
        int | None,
        typer.Option(
            "--complete", "--step-complete", help="Number of the step just completed.", min=0
        ),
    ] = None,
    desc: Annotated[
        str | None, typer.Option("--desc", "--step-desc", help="What the step did.")
    ] = None,
    cycle_end: Annotated[
        str | None,
        typer.Option(
            "--cycle-end", help="Close this cycle (iteration) with REASON.", metavar="REASON"
        ),
    ] = None,
    status: Annotated[str, typer.Option("--status", help="OK or NOK.")] = "OK",
    action: Annotated[
        str | None,
        typer.Option(help='What happened [default: "updated"; with NOK, "failed"].'),
    ] = None,
    tokens: Annotated[
        int | None,
        typer.Option(help="Tokens in use; default: this worker's live context reading."),
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project", help="Project directory [default: the worker's project, else cwd]."
        ),
    ] = None,
) -> None:
    """Record a completed step (or a cycle's close) in run.log and the iteration's record."""
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.cli.common import fail, project_dir
    from unattended.supervisor.records import steps

    reason = " ".join((cycle_end or "").split())
    if cycle_end is not None and not reason:
        fail("--cycle-end needs a REASON")
    if complete is None and desc is None and cycle_end is not None:
        _close_cycle(project, reason)
        return
    if complete is None or desc is None:
        fail("give --complete N --desc TEXT (and/or --cycle-end REASON)")
    state = status.strip().upper()
    if state not in STATUSES:
        fail(f"--status must be OK or NOK, not {status!r}")
    text = " ".join(desc.split())
    if not text:
        fail("--desc must not be empty")
    done_action = " ".join((action or "").split()) or ("updated" if state == "OK" else "failed")
    reading = None
    if tokens is None:
        reading, reason = steps.live_reading(os.environ)
        if reading is None:
            fail(f"pass --tokens N: {reason}")
        tokens = int(reading["tokens"])
    elif tokens < 0:
        fail(f"--tokens must not be negative, not {tokens}")
    window = steps.window_for(os.environ, reading)
    percent = tokens / window * 100
    if project is None and os.environ.get(steps.ENV_PROJECT):
        project = Path(os.environ[steps.ENV_PROJECT])
    paths = RunPaths(project_dir(project))
    iteration = steps.current_iteration(os.environ)
    line = steps.step_line(complete, percent, state, done_action, text)
    now = steps.timestamp()
    try:
        steps.append_run_log(paths, steps.log_prefix(iteration, now) + line)
        steps.record_step(
            paths,
            iteration,
            {
                "step": complete,
                "desc": text,
                "status": state,
                "action": done_action,
                "tokens": tokens,
                "percent": round(percent, 1),
                "window": window,
                "time": now,
            },
        )
    except OSError as exc:
        fail(f"cannot record the step in {paths.root}: {exc.strerror or exc}")
    typer.echo(line)
    if reason:
        _close_cycle(project, reason)


def _close_cycle(project: Path | None, reason: str) -> None:
    """``Cycle <N> closed: <reason>`` in run.log, and a close record beside the steps."""
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.cli.common import fail, project_dir
    from unattended.supervisor.records import steps

    if project is None and os.environ.get(steps.ENV_PROJECT):
        project = Path(os.environ[steps.ENV_PROJECT])
    paths = RunPaths(project_dir(project))
    iteration = steps.current_iteration(os.environ)
    now = steps.timestamp()
    try:
        number = steps.next_cycle(paths, iteration)
        line = steps.cycle_line(number, reason)
        steps.append_run_log(paths, steps.log_prefix(iteration, now) + line)
        steps.record_step(paths, iteration, {"cycle_end": reason, "cycle": number, "time": now})
    except OSError as exc:
        fail(f"cannot record the cycle close in {paths.root}: {exc.strerror or exc}")
    typer.echo(line)
