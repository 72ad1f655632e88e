"""``unattended start``: the typer command. The work is in ``start_run`` (which ``entry`` also
calls directly for a plain ``start``, without typer)."""

from __future__ import annotations

from typing import Annotated

import typer

from unattended.contracts.setting_help import STAGGER_HELP
from unattended.supervisor.cli.common import ProjectOpt
from unattended.supervisor.cli.start_run import StartOptions, run_start


def start(
    project: ProjectOpt = None,
    hours: Annotated[
        float | None, typer.Option(help="Wall-clock cap in hours [default: 24].")
    ] = None,
    max_iterations: Annotated[
        int | None, typer.Option(help="Most workers to run [default: 200].")
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="The task, as text [default: none].")] = None,
    prompt_file: Annotated[
        str | None,
        typer.Option(help="The task, from a file re-read for every worker [default: PROMPT.md]."),
    ] = None,
    worker_timeout: Annotated[
        float | None, typer.Option(help="Seconds before a worker is killed [default: 3600].")
    ] = None,
    stall_timeout: Annotated[
        float | None, typer.Option(help="Seconds of silence and idle CPU [default: 900].")
    ] = None,
    claude_bin: Annotated[
        str | None, typer.Option(help="The claude executable [default: claude].")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Worker model [default: the CLI's default model].")
    ] = None,
    permission_mode: Annotated[
        str | None,
        typer.Option(
            help="Permission mode [default: bypassPermissions; default with --allowed-tools]."
        ),
    ] = None,
    allowed_tools: Annotated[
        str | None, typer.Option(help="Tools the worker may use [default: all].")
    ] = None,
    done_when: Annotated[
        str | None,
        typer.Option(help="Shell command; exit 0 after an iteration means done [default: none]."),
    ] = None,
    grace_seconds: Annotated[
        float | None, typer.Option(help="SIGINT → SIGKILL grace for workers [default: 10].")
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(help="Check out (or create) this branch before starting [default: stay]."),
    ] = None,
    allow_dirty: Annotated[
        bool | None,
        typer.Option("--allow-dirty", help="Start on a dirty work tree [default: off]."),
    ] = None,
    on_limit: Annotated[
        str | None, typer.Option(help="On a usage limit: wait or stop [default: wait].")
    ] = None,
    max_cost_usd: Annotated[
        float | None, typer.Option(help="Cost cap in USD [default: none].")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Token cap [default: none].")] = None,
    session_policy: Annotated[
        str | None, typer.Option(help="auto, fresh or continue [default: auto].")
    ] = None,
    context_source: Annotated[
        str | None,
        typer.Option(
            help="transcript or api (api: see `unattended doctor`) [default: transcript]."
        ),
    ] = None,
    escalate_model: Annotated[
        str | None, typer.Option(help="Stronger model to escalate to [default: none].")
    ] = None,
    escalate_after: Annotated[
        int | None,
        typer.Option(help="Failed/no-progress iterations before escalating [default: none]."),
    ] = None,
    max_quota_pct: Annotated[
        float | None,
        typer.Option(help="Wait when subscription quota use reaches this % [default: no limit]."),
    ] = None,
    notify_cmd: Annotated[
        str | None, typer.Option(help="Shell command run on outcomes [default: none].")
    ] = None,
    on_done: Annotated[
        str | None, typer.Option(help="At the end: print, push, or pr [default: print].")
    ] = None,
    on_done_also: Annotated[
        str | None,
        typer.Option(help="Also push on these endings: capped,stuck,blocked [default: none]."),
    ] = None,
    remote: Annotated[
        str | None, typer.Option(help="Remote to push to [default: upstream, else origin].")
    ] = None,
    forge: Annotated[
        str | None, typer.Option(help="github or gitlab [default: from the remote URL].")
    ] = None,
    metrics_textfile: Annotated[
        str | None, typer.Option(help="Rewrite this .prom file for node_exporter [default: none].")
    ] = None,
    start_stagger_s: Annotated[float | None, typer.Option(help=STAGGER_HELP)] = None,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Run the loop in this process.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run the checks, print the worker command.")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a crashed run (refused when none).")
    ] = False,
    resume_or_start: Annotated[
        bool,
        typer.Option(
            "--resume-or-start",
            help="Continue a crashed run, else start a new one with the caps given here.",
        ),
    ] = False,
    run_id: Annotated[
        str | None,
        typer.Option(
            help="A new run's id [default: its start time], e.g. the name of the Kubernetes Job "
            "that runs it (letters, digits, . _ -). A resumed run keeps its own."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Start a run: preflight, then detach a daemon (returns once it is ready)."""
    values = dict(locals())  # first: only the options are in scope here
    values = {k: v for k, v in values.items() if k not in StartOptions.INVOCATION}
    opts = StartOptions(
        project=project,
        foreground=foreground,
        dry_run=dry_run,
        resume=resume,
        json_out=json_out,
        resume_or_start=resume_or_start,
        run_id=run_id,
    )
    code = run_start(opts, values)
    raise typer.Exit(code)
