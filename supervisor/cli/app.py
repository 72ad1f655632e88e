"""The ``unattended`` command line (typer). Heavy modules are imported inside commands so that
``--help``, ``status`` and ``start`` stay quick."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

app = typer.Typer(
    name="unattended",
    help="Keep a Claude Code worker busy on a git repository for hours, and stop it safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", help="Project directory (default: current directory)."),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line (plus optional detail lines) on stderr, a non-zero exit, no traceback."""
    typer.echo(f"unattended: {message}", err=True)
    raise typer.Exit(code)


def project_dir(project: Path | None) -> Path:
    path = (project or Path.cwd()).expanduser()
    if not path.is_dir():
        fail(f"project directory not found: {path}")
    return path.resolve()


def git_top(path: Path) -> tuple[Path, Path]:
    """(work-tree top, absolute git dir); exit 2 when ``path`` is not in a git work tree."""
    from unattended.supervisor.git.facts import NotAGitRepo, gather_repo_facts

    try:
        facts = gather_repo_facts(path, ())
    except NotAGitRepo:
        fail(f"{path} is not inside a git work tree: run `git init` there, or pass --project DIR")
    return facts.top, facts.git_dir


@app.command()
def start(
    project: ProjectOpt = None,
    hours: Annotated[
        float | None, typer.Option(help="Wall-clock cap in hours [default: 24].")
    ] = None,
    max_iterations: Annotated[
        int | None, typer.Option(help="Most workers to run [default: 200].")
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="The task, as text.")] = None,
    prompt_file: Annotated[
        str | None, typer.Option(help="The task, from a file re-read for every worker.")
    ] = None,
    worker_timeout: Annotated[
        float | None, typer.Option(help="Seconds before a worker is killed [default: 3600].")
    ] = None,
    stall_timeout: Annotated[
        float | None, typer.Option(help="Seconds of silence and idle CPU [default: 900].")
    ] = None,
    claude_bin: Annotated[str | None, typer.Option(help="The claude executable.")] = None,
    model: Annotated[str | None, typer.Option(help="Worker model.")] = None,
    permission_mode: Annotated[
        str | None, typer.Option(help="Worker permission mode [default: bypassPermissions].")
    ] = None,
    allowed_tools: Annotated[str | None, typer.Option(help="Tools the worker may use.")] = None,
    done_when: Annotated[
        str | None, typer.Option(help="Shell command; exit 0 after an iteration means done.")
    ] = None,
    grace_seconds: Annotated[
        float | None, typer.Option(help="SIGINT → SIGKILL grace for workers [default: 10].")
    ] = None,
    branch: Annotated[
        str | None, typer.Option(help="Check out (or create) this branch before starting.")
    ] = None,
    allow_dirty: Annotated[
        bool | None, typer.Option("--allow-dirty", help="Start on a dirty work tree.")
    ] = None,
    on_limit: Annotated[
        str | None, typer.Option(help="On a usage limit: wait (default) or stop.")
    ] = None,
    max_cost_usd: Annotated[float | None, typer.Option(help="Cost cap in USD.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Token cap.")] = None,
    session_policy: Annotated[
        str | None, typer.Option(help="auto (default), fresh or continue.")
    ] = None,
    context_source: Annotated[str | None, typer.Option(help="transcript or api.")] = None,
    escalate_model: Annotated[
        str | None, typer.Option(help="Stronger model to escalate to.")
    ] = None,
    escalate_after: Annotated[
        int | None, typer.Option(help="Failed/no-progress iterations before escalating.")
    ] = None,
    max_quota_pct: Annotated[
        float | None, typer.Option(help="Wait when subscription quota use reaches this %.")
    ] = None,
    notify_cmd: Annotated[str | None, typer.Option(help="Shell command run on outcomes.")] = None,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Run the loop in this process.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run the checks, print the worker command.")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a crashed run (else start a new one).")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Start a run: preflight, then detach a daemon (returns once it is ready)."""
    values = dict(locals())  # first: only the options are in scope here
    from unattended.supervisor.cli.start import StartOptions, run_start

    values = {k: v for k, v in values.items() if k not in StartOptions.INVOCATION}
    opts = StartOptions(
        project=project, foreground=foreground, dry_run=dry_run, resume=resume, json_out=json_out
    )
    code = run_start(opts, values)
    raise typer.Exit(code)


@app.command()
def status(
    project: ProjectOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show what the run is doing (or how it ended)."""
    from unattended.supervisor.cli.status import show_status

    raise typer.Exit(show_status(project_dir(project), json_out))


@app.command()
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
        from unattended.supervisor.run.registry import stop_all

        raise typer.Exit(stop_all(now, wait, timeout))
    from unattended.supervisor.cli.status import request_stop

    raise typer.Exit(request_stop(project_dir(project), now, wait, timeout))


@app.command()
def logs(
    project: ProjectOpt = None,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("-n", "--lines", help="Lines to show.")] = 20,
) -> None:
    """Print run.log (like tail; -f follows it across rotation)."""
    from unattended.supervisor.cli.status import show_logs

    raise typer.Exit(show_logs(project_dir(project), follow, lines))


@app.command()
def demo(
    steps: Annotated[int, typer.Option(help="Iterations before the stub reports done.")] = 3,
) -> None:
    """Run the real daemon on a throwaway repo with a stub worker (no account needed)."""
    from unattended.supervisor.cli.demo import run_demo

    raise typer.Exit(run_demo(steps))


# (module, attribute, name, kind): commands living in their own modules. Each module keeps its
# top-level imports light (typer only) so registering them all costs nothing measurable.
SUBCOMMANDS: tuple[tuple[str, str, str, str], ...] = (
    ("unattended.supervisor.cli.recover", "recover", "recover", "command"),
    ("unattended.supervisor.cli.service", "service_app", "service", "group"),
    ("unattended.supervisor.cli.budget", "budget_app", "budget", "group"),
    ("unattended.supervisor.cli.step", "step", "step", "command"),
    ("unattended.supervisor.cli.ps", "ps", "ps", "command"),
    ("unattended.supervisor.cli.extend", "extend", "extend", "command"),
    ("unattended.supervisor.cli.watch", "watch", "watch", "command"),
    ("unattended.supervisor.cli.metrics", "metrics", "metrics", "command"),
    ("unattended.supervisor.cli.report", "report", "report", "command"),
    ("unattended.supervisor.cli.doctor", "doctor", "doctor", "command"),
    ("unattended.supervisor.cli.advise", "advise", "advise", "command"),
)


def _register_subcommands(args: list[str]) -> None:
    """Add the commands that live in their own modules. When the first argument names a
    command, only that one is imported (start-up time is the budget); for help, typos and
    no arguments, all of them."""
    import importlib

    first = args[0] if args else None
    if first in BUILTIN_COMMANDS:
        return
    wanted = [entry for entry in SUBCOMMANDS if entry[2] == first] or list(SUBCOMMANDS)
    for module_name, attr, name, kind in wanted:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # not built yet: the command is simply absent
            raise
        target = getattr(module, attr)
        if kind == "group":
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


BUILTIN_COMMANDS = frozenset({"start", "status", "stop", "logs", "demo"})


def run_cli(args: list[str]) -> int:
    _register_subcommands(args)
    try:
        app(args=args, prog_name="unattended", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
