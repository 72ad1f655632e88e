"""``unattended extend``: raise (or lower) the caps of the live run.

Register with ``app.command("extend")(extend)``. Only typer is imported at module level.

Every value is the run's new *total*, not an increment: ``--hours 30`` moves the deadline to
``started_at + 30 h``; ``--max-iterations 300`` lets the run start 300 workers in all;
``--max-cost-usd 8`` lets it spend $8 in all. The request is written to
``.unattended/control.json``; the daemon applies it at its next tick (about a second), logs it
in run.log and records it in state.json. Exit codes: 0 requested (applied or pending), 1 no
active run in the project or the daemon did not apply this request (it says so), 2 bad input or
an unreadable state.json.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

APPLY_WAIT_S = 3.0


def extend(
    project: Annotated[
        Path | None,
        typer.Option(
            "--project", metavar="DIR", help="Project directory (default: current directory)."
        ),
    ] = None,
    hours: Annotated[
        float | None,
        typer.Option(
            "--hours", metavar="H", help="The run's total hours: deadline = start + H hours."
        ),
    ] = None,
    max_iterations: Annotated[
        int | None,
        typer.Option("--max-iterations", metavar="N", help="Total workers the run may start."),
    ] = None,
    max_cost_usd: Annotated[
        float | None,
        typer.Option("--max-cost-usd", metavar="X", help="Total USD the run may spend."),
    ] = None,
) -> None:
    """Change the caps of the live run (new totals, applied by the daemon within a second)."""
    from unattended.supervisor.cli.common import fail, project_dir

    _validate(hours, max_iterations, max_cost_usd)
    where = project_dir(project)
    raise typer.Exit(_run(where, hours, max_iterations, max_cost_usd, fail))


def _validate(hours: float | None, max_iterations: int | None, max_cost: float | None) -> None:
    from unattended.supervisor.cli.common import fail

    if hours is None and max_iterations is None and max_cost is None:
        fail("nothing to change: give --hours H, --max-iterations N and/or --max-cost-usd X")
    if hours is not None and not (math.isfinite(hours) and hours > 0):
        fail(f"--hours must be a positive number (the run's total hours), not {hours:g}")
    if max_iterations is not None and max_iterations < 1:
        fail(f"--max-iterations must be at least 1, not {max_iterations}")
    if max_cost is not None and not (math.isfinite(max_cost) and max_cost > 0):
        fail(f"--max-cost-usd must be a positive amount, not {max_cost:g}")


def _run(project: Path, hours, max_iterations, max_cost, fail) -> int:  # noqa: ANN001
    from unattended.contracts.paths import RunPaths
    from unattended.contracts.state import StateFileError
    from unattended.supervisor.records.liveness import pid_is_alive
    from unattended.supervisor.records.state import read_state
    from unattended.supervisor.run.control import (
        new_deadline,
        wait_applied,
        was_applied,
        write_request,
    )

    paths = RunPaths(project)
    try:
        state = read_state(paths)
    except StateFileError as exc:
        fail(str(exc))
    if state is None or state.status.terminal or not pid_is_alive(state.pid, state.pid_create_time):
        typer.echo(f"unattended: no active run in {project}: nothing to extend", err=True)
        return 1
    now = datetime.now(UTC)
    if hours is not None and new_deadline(state.started_at, hours) <= now:
        typer.echo(
            f"note: the run started {state.started_at:%Y-%m-%dT%H:%M:%SZ}; {hours:g} hours in "
            "all is already over, so the run will end as capped"
        )
    if max_iterations is not None and max_iterations <= state.iteration:
        typer.echo(
            f"note: the run is at iteration {state.iteration}; it will end after the current one"
        )
    try:
        request = write_request(paths, hours, max_iterations, max_cost)
    except OSError as exc:
        fail(f"cannot write {paths.control}: {exc.strerror}")
    asked = ", ".join(f"{k} {v:g}" for k, v in request.changes().items())
    if not wait_applied(paths, APPLY_WAIT_S):
        typer.echo(
            f"requested {asked}: the daemon (pid {state.pid}) will apply it at its next tick "
            f"(not yet after {APPLY_WAIT_S:g}s); check with `unattended status`"
        )
        return 0
    if not was_applied(paths, request.request_id):
        typer.echo(
            f"unattended: not applied: the daemon did not apply {asked} (see run.log, "
            "`unattended logs`)",
            err=True,
        )
        return 1
    try:
        after = read_state(paths)
    except StateFileError:
        after = None
    if after is None:
        typer.echo(f"applied {asked}")
        return 0
    typer.echo(f"applied: {caps_text(after)}")
    return 0


def caps_text(state) -> str:  # noqa: ANN001 - RunState
    """The run's caps as state.json records them, for people."""
    now = datetime.now(UTC)
    left = (state.deadline - now).total_seconds()
    hours = state.settings.get("hours")
    total = f"{hours:g}h in all, " if isinstance(hours, int | float) else ""
    when = f"{_duration(left)} left" if left > 0 else "already past"
    parts = [
        f"deadline {state.deadline:%Y-%m-%dT%H:%M:%SZ} ({total}{when})",
        f"max iterations {state.max_iterations} (at {state.iteration})",
    ]
    cost = state.settings.get("max_cost_usd")
    spent = f"${state.cost_usd:.2f} spent"
    parts.append(f"max cost ${cost:g} ({spent})" if cost is not None else f"no cost cap ({spent})")
    return "; ".join(parts)


def _duration(seconds: float) -> str:
    from unattended.contracts.timefmt import fmt_duration

    return fmt_duration(seconds)
