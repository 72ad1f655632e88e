"""``unattended budget``: check a step against a token budget, and a ledger of reservations.

Compatible with the budget-monitor designs this product absorbs (same defaults, same lines).
The decisions and message strings live in ``safety.budget``; the ledger in
``supervisor.ledger``. Top-level imports stay light (typer only): ``budget check`` runs inside
workers before each step.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

budget_app = typer.Typer(
    name="budget",
    help="Token budgets: check a step before starting it; reserve and record against a ledger.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", help="Project whose .unattended/budget.json to use (default: cwd)."),
]
LabelOpt = Annotated[str | None, typer.Option("--label", help="Whose tokens these are.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _paths(project: Path | None):  # noqa: ANN202 - RunPaths, imported lazily
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.cli.common import project_dir

    return RunPaths(project_dir(project))


def _amount(value: int, what: str) -> int:
    if value < 0:
        from unattended.supervisor.cli.common import fail

        fail(f"{what} must be a whole number of tokens, not {value}")
    return value


def _label(label: str | None) -> str:
    from unattended.contracts.budget import DEFAULT_LABEL

    text = (label or "").strip()
    return text or DEFAULT_LABEL


def _ledger_call(func, *args):  # noqa: ANN001, ANN202 - thin error wrapper
    """Run a ledger operation; an unreadable ledger or directory is one line and exit 2."""
    from unattended.contracts.budget import LedgerFileError
    from unattended.supervisor.cli.common import fail

    try:
        return func(*args)
    except LedgerFileError as exc:
        fail(f"{exc} (run `unattended budget init` to start a new ledger)")
    except OSError as exc:
        fail(f"cannot update the budget ledger: {exc.strerror or exc}")


def _summary(ledger) -> str:  # noqa: ANN001
    return (
        f"used {ledger.used:,} + reserved {ledger.reserved:,} of {ledger.budget:,} tokens "
        f"({ledger.utilization:.1f}%)"
    )


@budget_app.command()
def check(
    tokens: Annotated[
        int | None,
        typer.Argument(
            help="Tokens in use; default: this worker's live context reading.", show_default=False
        ),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Percent of the budget allowed (20-95).")
    ] = 35.0,
    budget: Annotated[
        int | None,
        typer.Option(
            "--budget",
            help="Budget in tokens [default: 200000; with the live reading, the model's window].",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Pass (exit 0) when TOKENS <= threshold% of the budget, else exit 1."""
    from unattended.safety.budget import DEFAULT_BUDGET, budget_check, threshold_error
    from unattended.supervisor.cli.common import fail
    from unattended.supervisor.records.steps import live_reading, window_for

    problem = threshold_error(threshold)
    if problem:
        fail(problem)
    if tokens is None:
        reading, reason = live_reading(os.environ)
        if reading is None:
            fail(f"pass TOKENS: {reason}")
        tokens = int(reading["tokens"])
        if budget is None:
            budget = window_for(os.environ, reading)
    try:
        result = budget_check(tokens, DEFAULT_BUDGET if budget is None else budget, threshold)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result.to_dict(), ensure_ascii=False) if json_out else result.message)
    raise typer.Exit(0 if result.can_proceed else 1)


@budget_app.command()
def init(
    budget: Annotated[int, typer.Option("--budget", help="Budget in tokens.")] = 200_000,
    project: ProjectOpt = None,
) -> None:
    """Start a fresh ledger with this budget (usage and reservations at zero)."""
    from unattended.supervisor.cli.common import fail
    from unattended.supervisor.records import ledger as ledgers

    if budget <= 0:
        fail(f"budget must be a positive number of tokens, not {budget}")
    paths = _paths(project)
    _ledger_call(ledgers.init, paths, budget)
    typer.echo(f"Budget ledger ready: {budget:,} tokens ({paths.budget})")


@budget_app.command()
def reserve(
    tokens: Annotated[int, typer.Argument(help="Tokens to reserve.", show_default=False)],
    label: LabelOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Reserve TOKENS: granted (exit 0) while used + reserved + TOKENS stays below 95 %."""
    from unattended.supervisor.records import ledger as ledgers

    amount, name = _amount(tokens, "TOKENS"), _label(label)
    res = _ledger_call(ledgers.reserve, _paths(project), amount, name)
    led = res.ledger
    if res.granted:
        typer.echo(f"✅ Reserved {amount:,} tokens for {name}: {_summary(led)}")
        raise typer.Exit(0)
    total = led.committed + amount
    typer.echo(
        f"❌ Cannot reserve {amount:,} tokens for {name}: used {led.used:,} + reserved "
        f"{led.reserved:,} + {amount:,} = {total:,} would reach 95% of the "
        f"{led.budget:,}-token budget"
    )
    raise typer.Exit(1)


@budget_app.command()
def record(
    tokens: Annotated[int, typer.Argument(help="Tokens used.", show_default=False)],
    label: LabelOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Add TOKENS to used, releasing up to TOKENS of the label's reservation."""
    from unattended.supervisor.records import ledger as ledgers

    amount, name = _amount(tokens, "TOKENS"), _label(label)
    released, led = _ledger_call(ledgers.record, _paths(project), amount, name)
    typer.echo(
        f"Recorded {amount:,} tokens for {name} (released {released:,} reserved): {_summary(led)}"
    )


@budget_app.command()
def report(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Budget, used, reserved, utilization, alert level and per-label usage."""
    from unattended.supervisor.records import ledger as ledgers

    paths = _paths(project)
    led = _ledger_call(ledgers.load, paths)
    if led is None:
        led = ledgers.new_ledger()
    doc = ledgers.report(led)
    if json_out:
        typer.echo(json.dumps(doc))
        return
    lines = [
        f"budget       {doc['budget']:,} tokens",
        f"used         {doc['used']:,} ({doc['used_percent']:.1f}%)",
        f"reserved     {doc['reserved']:,}",
        f"available    {doc['available']:,}",
        f"utilization  {doc['utilization']:.1f}% (alert level: {doc['alert_level']})",
    ]
    if doc["labels"]:
        width = max(len(name) for name in doc["labels"])
        lines.append("labels")
        for name, entry in doc["labels"].items():
            lines.append(
                f"  {name:<{width}}  used {entry['used']:,}  reserved {entry['reserved']:,}"
            )
    typer.echo("\n".join(lines))


@budget_app.command()
def reset(project: ProjectOpt = None) -> None:
    """Zero usage and reservations; keep the budget."""
    from unattended.supervisor.records import ledger as ledgers

    led = _ledger_call(ledgers.reset, _paths(project))
    typer.echo(f"Budget ledger reset: {_summary(led)}")
