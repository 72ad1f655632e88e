"""``unattended ps``: every run of this user on this machine, from the per-user registry.

Register with ``app.command("ps")(ps)``. Only typer is imported at module level; the registry,
pydantic models and rich are imported when the command runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer


def ps(
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="A JSON list of objects: project, pid, status, alive, iteration, started_at, "
            "cost_usd.",
        ),
    ] = False,
) -> None:
    """List every run of this user: project, pid, status, iteration, elapsed, cost.

    A daemon that died without cleaning up is listed as `crashed` until a new run starts in its
    project; `unknown` means the daemon lives but its state.json cannot be read.
    """
    from unattended.supervisor.run.registry import scan

    rows, problems = scan()
    for line in problems:
        typer.echo(f"unattended: ignoring registry file: {line}", err=True)
    if json_out:
        typer.echo(json.dumps([row.ps_json() for row in rows], indent=2))
        raise typer.Exit(0)
    if not rows:
        typer.echo("no runs")
        raise typer.Exit(0)
    _print_table(rows)
    raise typer.Exit(0)


def elapsed_text(row, now: datetime) -> str:  # noqa: ANN001 - row: RunEntry
    """Time since the run started; for a dead daemon, up to its last state write."""
    from unattended.contracts.timefmt import fmt_duration

    end = now if row.alive or row.updated_at is None else row.updated_at
    return fmt_duration(max(0.0, (end - row.started_at).total_seconds()))


def _iteration_text(row) -> str:  # noqa: ANN001
    if row.iteration is None:
        return "-"
    return f"{row.iteration}/{row.max_iterations}" if row.max_iterations else str(row.iteration)


def _print_table(rows: list) -> None:
    from rich.console import Console
    from rich.table import Table

    now = datetime.now(UTC)
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("PROJECT", overflow="fold")
    table.add_column("PID", justify="right", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("ITER", justify="right", no_wrap=True)
    table.add_column("ELAPSED", justify="right", no_wrap=True)
    table.add_column("COST", justify="right", no_wrap=True)
    styles = {"crashed": "bold red", "unknown": "yellow", "running": "green"}
    for row in rows:
        cost = "-" if row.cost_usd is None else f"${row.cost_usd:.2f}"
        table.add_row(
            row.project,
            str(row.pid),
            f"[{styles[row.status]}]{row.status}[/]" if row.status in styles else row.status,
            _iteration_text(row),
            elapsed_text(row, now),
            cost,
        )
    Console(highlight=False).print(table)
    for row in rows:
        if row.note:
            typer.echo(f"note: {row.project}: {row.note}")
