"""``unattended extend``: raise (or lower) the caps of the live run.

Register with ``app.command("extend")(extend)``. Only typer is imported at module level.

Every value is the run's new *total*, not an increment: ``--hours 30`` moves the deadline to
``started_at + 30 h``; ``--max-iterations 300`` lets the run start 300 workers in all;
``--max-cost-usd 8`` lets it spend $8 in all. The request is written to
``.unattended/control.json``; the daemon applies it at its next tick (about a second), logs it
in run.log and records it in state.json. Exit codes: 0 requested (applied or pending), 1 the
daemon did not apply this request (it says so), 2 no active run in the project, bad input
or an unreadable state.json. ``--json`` prints one document: what was asked, whether it was
applied, the caps.
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
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Change the caps of the live run (new totals, applied by the daemon within a second)."""
    from unattended.supervisor.cli.common import fail, project_dir

    _validate(hours, max_iterations, max_cost_usd)
    where = project_dir(project)
    raise typer.Exit(_run(where, hours, max_iterations, max_cost_usd, fail, json_out))


def _validate(hours: float | None, max_iterations: int | None, max_cost: float | None) -> None:
    from unattended.contracts.settings import MAX_COST_USD, MAX_HOURS, MAX_ITERATIONS
    from unattended.supervisor.cli.common import fail

    if hours is None and max_iterations is None and max_cost is None:
        fail("nothing to change: give --hours H, --max-iterations N and/or --max-cost-usd X")
    if hours is not None and not (math.isfinite(hours) and 0 < hours <= MAX_HOURS):
        fail(
            f"--hours must be a positive number of hours, at most {MAX_HOURS:g} (the run's "
            f"total hours), not {hours:g}"
        )
    if max_iterations is not None and not 1 <= max_iterations <= MAX_ITERATIONS:
        fail(
            f"--max-iterations must be at least 1 and at most {MAX_ITERATIONS}, "
            f"not {max_iterations}"
        )
    if max_cost is not None and not (math.isfinite(max_cost) and 0 < max_cost <= MAX_COST_USD):
        fail(
            f"--max-cost-usd must be a positive amount, at most {MAX_COST_USD:.0f}, "
            f"not {max_cost:g}"
        )


def _run(project: Path, hours, max_iterations, max_cost, fail, json_out=False) -> int:  # noqa: ANN001
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
        fail(f"no active run in {project}: nothing to extend (see `unattended status`)")
    doc: dict = {"project": str(project), "run_id": state.run_id, "notes": []}

    def say(text: str, note: bool = False) -> None:
        if not json_out:
            typer.echo(text)
        elif note:
            doc["notes"].append(text.removeprefix("note: "))

    now = datetime.now(UTC)
    if hours is not None and new_deadline(state.started_at, hours) <= now:
        say(
            f"note: the run started {state.started_at:%Y-%m-%dT%H:%M:%SZ}; {hours:g} hours in "
            "all is already over, so the run will end as capped",
            note=True,
        )
    if max_iterations is not None and max_iterations <= state.iteration:
        say(
            f"note: the run is at iteration {state.iteration}; it will end after the current one",
            note=True,
        )
    try:
        request = write_request(paths, hours, max_iterations, max_cost)
    except OSError as exc:
        fail(f"cannot write {paths.control}: {exc.strerror}")
    asked = ", ".join(f"{k} {v:g}" for k, v in request.changes().items())
    doc["requested"] = request.changes()
    applied = wait_applied(paths, APPLY_WAIT_S)
    doc["applied"] = applied
    if not applied:
        say(
            f"requested {asked}: the daemon (pid {state.pid}) will apply it at its next tick "
            f"(not yet after {APPLY_WAIT_S:g}s); check with `unattended status`"
        )
        return _done(doc, json_out)
    if not was_applied(paths, request.request_id):
        doc["applied"] = False
        typer.echo(
            f"unattended: not applied: the daemon did not apply {asked} (see run.log, "
            "`unattended logs`)",
            err=True,
        )
        _done(doc, json_out)
        return 1
    try:
        after = read_state(paths)
    except StateFileError:
        after = None
    if after is None:
        say(f"applied {asked}")
        return _done(doc, json_out)
    doc.update(
        deadline=f"{after.deadline:%Y-%m-%dT%H:%M:%SZ}",
        max_iterations=after.max_iterations,
        max_cost_usd=after.settings.get("max_cost_usd"),
    )
    say(f"applied: {caps_text(after)}")
    return _done(doc, json_out)


def _done(doc: dict, json_out: bool) -> int:
    if json_out:
        import json

        typer.echo(json.dumps(doc))
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
