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


def _worker_project(project: Path | None) -> Path | None:
    """Inside a worker, its project (the daemon's variable) unless --project says otherwise."""
    from unattended.supervisor.records.steps import ENV_PROJECT

    if project is None and os.environ.get(ENV_PROJECT):
        return Path(os.environ[ENV_PROJECT])
    return project


def _alert(before: int, led, json_out: bool) -> str | None:  # noqa: ANN001 - BudgetLedger
    """The 80/90/95 % line when this change crossed a level (printed, as ``report`` shows it)."""
    from unattended.safety.budget import alert_line, crossed_level

    level = crossed_level(before, led.committed, led.budget)
    if level is None:
        return None
    line = alert_line(level, led.committed, led.budget)
    if not json_out:
        typer.echo(line)
    return line


def _ledger_doc(led, **extra) -> str:  # noqa: ANN001, ANN003 - BudgetLedger, fields
    from unattended.supervisor.records import ledger as ledgers

    return json.dumps({**extra, **ledgers.report(led)}, ensure_ascii=False)


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
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Pass (exit 0) when TOKENS <= threshold% of the budget, else exit 1. The budget: --budget,
    else the project's ledger (`budget init`), else the live model's window, else 200000."""
    from unattended.safety.budget import DEFAULT_BUDGET, budget_check, threshold_error
    from unattended.supervisor.cli.common import fail
    from unattended.supervisor.records import ledger as ledgers
    from unattended.supervisor.records.steps import live_reading, window_for

    problem = threshold_error(threshold)
    if problem:
        fail(problem)
    where = (_worker_project(project) or Path.cwd()).expanduser()
    if budget is None and where.is_dir():  # no project yet is no ledger, not an error
        from unattended.contracts.paths import RunPaths
        from unattended.supervisor.git.top import project_top

        led = _ledger_call(ledgers.load, RunPaths(project_top(where)))
        if led is not None:
            budget = led.budget
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
    budget: Annotated[
        int | None,
        typer.Option("--budget", help="Budget in tokens [default: 200000].", show_default=False),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Budget = this model's context window (e.g. opus[1m])."),
    ] = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a fresh ledger with this budget (usage and reservations at zero)."""
    from unattended.contracts.budget import DEFAULT_BUDGET
    from unattended.supervisor.cli.common import fail
    from unattended.supervisor.records import ledger as ledgers

    if budget is not None and model is not None:
        fail("give --budget or --model, not both")
    if model is not None:
        from unattended.contracts.models_table import parse_model, table_window

        if parse_model(model)[0] is None:
            fail(f"unknown model {model!r}: give a Claude model (opus, claude-sonnet-4-5...)")
        budget = table_window(model)
    budget = DEFAULT_BUDGET if budget is None else budget
    if budget <= 0:
        fail(f"budget must be a positive number of tokens, not {budget}")
    paths = _paths(project)
    led = _ledger_call(ledgers.init, paths, budget)
    if json_out:
        typer.echo(_ledger_doc(led, ledger=str(paths.budget)))
        return
    typer.echo(f"Budget ledger ready: {budget:,} tokens ({paths.budget})")


@budget_app.command()
def reserve(
    tokens: Annotated[int, typer.Argument(help="Tokens to reserve.", show_default=False)],
    label: LabelOpt = None,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Reserve TOKENS: granted (exit 0) while used + reserved + TOKENS stays below 95 %."""
    from unattended.supervisor.records import ledger as ledgers

    amount, name = _amount(tokens, "TOKENS"), _label(label)
    res = _ledger_call(ledgers.reserve, _paths(_worker_project(project)), amount, name)
    led = res.ledger
    if json_out:
        before = led.committed - (amount if res.granted else 0)
        alert = _alert(before, led, json_out) if res.granted else None
        doc = _ledger_doc(led, granted=res.granted, label=name, amount=amount, alert=alert)
        typer.echo(doc)
        raise typer.Exit(0 if res.granted else 1)
    if res.granted:
        typer.echo(f"✅ Reserved {amount:,} tokens for {name}: {_summary(led)}")
        _alert(led.committed - amount, led, json_out)
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
    done: Annotated[
        bool,
        typer.Option("--done", help="The step is finished: release all of the label's reserve."),
    ] = False,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add TOKENS to used, releasing up to TOKENS of the label's reservation (all of it with
    --done)."""
    from unattended.supervisor.records import ledger as ledgers

    amount, name = _amount(tokens, "TOKENS"), _label(label)
    paths = _paths(_worker_project(project))
    released, led = _ledger_call(ledgers.record, paths, amount, name, done)
    before = led.committed - amount + released
    if json_out:
        alert = _alert(before, led, json_out)
        typer.echo(_ledger_doc(led, label=name, amount=amount, released=released, alert=alert))
        return
    typer.echo(
        f"Recorded {amount:,} tokens for {name} (released {released:,} reserved): {_summary(led)}"
    )
    _alert(before, led, json_out)


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
def reset(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Zero usage and reservations; keep the budget."""
    from unattended.supervisor.records import ledger as ledgers

    led = _ledger_call(ledgers.reset, _paths(project))
    if json_out:
        typer.echo(_ledger_doc(led))
        return
    typer.echo(f"Budget ledger reset: {_summary(led)}")
