"""``unattended start``: settings, preflight, lock, then a detached (or foreground) daemon."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer

from unattended.supervisor.cli.common import ProjectOpt, fail, git_top, project_dir


@dataclass
class StartOptions:
    INVOCATION: ClassVar[tuple[str, ...]] = (
        "project",
        "foreground",
        "dry_run",
        "resume",
        "resume_or_start",
        "json_out",
    )

    project: Path | None
    foreground: bool
    dry_run: bool
    resume: bool
    json_out: bool
    resume_or_start: bool = False  # --resume, or a new run when there is nothing to resume


def _print_checks(checks: list[Any]) -> None:
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        first, *rest = check.message.splitlines() or [""]
        typer.echo(f"[{mark}] {check.name}: {first}")
        for line in rest:
            typer.echo(f"       {line}")


def run_start(opts: StartOptions, values: dict[str, Any]) -> int:
    from unattended.contracts.paths import RunPaths, lock_path
    from unattended.safety.preflight import preflight, snapshot_ignored_warning
    from unattended.supervisor.run import preflight as gather_mod
    from unattended.supervisor.run.daemon import (
        DaemonStartError,
        LaunchRequest,
        launch_detached,
        run_daemon,
        start_failure,
    )
    from unattended.supervisor.run.iteration import WorkerPlan, build_argv
    from unattended.supervisor.run.lock import AlreadyRunning, RunLock
    from unattended.supervisor.run.prompt import PromptError, build_prompt, read_prompt
    from unattended.supervisor.run.settings import ConfigError, resolve_settings

    project = project_dir(opts.project)
    top, git_dir = git_top(project)
    environ = dict(os.environ)
    try:
        settings, sources = resolve_settings(top, values, environ)
    except ConfigError as exc:
        fail(str(exc))
    if opts.resume or opts.resume_or_start:
        saved = _resume_settings(top, values)
        if saved is not None:
            settings, sources = saved
        elif not opts.resume_or_start:
            fail(f"no crashed run to resume in {top}: {_last_run_words(top)} "
                 "(start without --resume, or with --resume-or-start)")  # fmt: skip

    gathered = gather_mod.gather(top, settings, environ)
    checks = preflight(gathered.facts, settings, settings.branch)
    from unattended.supervisor.run.forge import forge_checks

    checks += forge_checks(top, settings, environ)
    secrets_warning = snapshot_ignored_warning(settings)
    if opts.dry_run:
        _print_checks(checks)
        if secrets_warning:
            typer.echo(f"[warn] snapshots: {secrets_warning}")
        refusals = [c.message for c in checks if not c.ok]
        plan_prompt = "<prompt>"
        if gathered.prompt is not None:
            try:
                plan_prompt = build_prompt(read_prompt(gathered.prompt))
            except PromptError as exc:
                typer.echo(f"[FAIL] prompt: {exc}")
                refusals.append(str(exc))
        plan = WorkerPlan(1, plan_prompt, settings.model, None)
        argv = build_argv(settings, plan, RunPaths(top).worker_settings)
        argv[0] = gathered.claude_bin or argv[0]
        typer.echo("worker command: " + shlex.join(argv))
        size = f"{len(plan_prompt.encode())} bytes" if plan_prompt != "<prompt>" else "none"
        typer.echo(f"worker stdin: the prompt + protocol ({size}), never on the command line")
        typer.echo(f"worker cwd: {top}")
        if refusals:  # the refusal a real start would print, where every refusal goes
            typer.echo(f"unattended: {refusals[0].splitlines()[0]}", err=True)
            return 2
        return 0
    failed = [c for c in checks if not c.ok]
    if failed:
        fail(failed[0].message)
    if secrets_warning:
        typer.echo(f"unattended: warning: {secrets_warning}", err=True)
    assert gathered.prompt is not None
    try:
        read_prompt(gathered.prompt)
    except PromptError as exc:
        fail(str(exc))
    settings.claude_bin = gathered.claude_bin or settings.claude_bin

    lock = RunLock(lock_path(git_dir))
    try:
        lock.acquire()
        if settings.branch:
            _switch_branch(top, settings.branch)
        from unattended.supervisor.git.facts import ensure_excluded

        ensure_excluded(git_dir)
    except AlreadyRunning as exc:
        fail(f"a run is already active for {top} ({exc}); see `unattended status`")
    except OSError as exc:  # a full disk, a read-only .git: nothing was started
        code, message = start_failure(exc, git_dir)
        fail(message, code)
    req = LaunchRequest(
        project=top,
        git_dir=git_dir,
        settings=settings,
        sources=sources,
        prompt_source=gathered.prompt,
        resume=opts.resume or opts.resume_or_start,
        environ=environ,
        echo=opts.foreground and not opts.json_out,
    )
    if opts.foreground:
        return int(run_daemon(req, lock))
    try:
        pid, run_id = launch_detached(req, lock)
    except DaemonStartError as exc:
        fail(str(exc), code=exc.code)
    except OSError as exc:  # .unattended/ or its daemon.stderr could not be created
        code, message = start_failure(exc, RunPaths(top).root)
        fail(message, code)
    paths = RunPaths(top)
    if opts.json_out:
        typer.echo(
            json.dumps(
                {
                    "pid": pid,
                    "run_id": run_id,
                    "project": str(top),
                    "state": str(paths.state),
                    "log": str(paths.run_log),
                }
            )
        )
    else:
        typer.echo(f"unattended: started daemon pid {pid} (run {run_id}) for {top}")
        typer.echo(f"log: {paths.run_log}   (unattended logs -f; unattended status)")
    return 0


def _resume_settings(top: Path, values: dict[str, Any]) -> tuple[Any, dict[str, str]] | None:
    """The crashed run's saved settings, with options given on this command line on top.

    A resumed run keeps its caps (a service unit restarting it passes the same bare options);
    None when there is nothing to resume (no run, or it ended). An unreadable state.json is
    refused here, on stderr, before anything is locked or forked.
    """
    from unattended.contracts.paths import RunPaths
    from unattended.contracts.settings import Settings
    from unattended.contracts.state import StateFileError
    from unattended.supervisor.records.state import read_state

    try:
        old = read_state(RunPaths(top))
    except StateFileError as exc:
        fail(f"cannot resume: {exc}")  # its hint: start without --resume archives it
    if old is None or old.status.terminal or not old.settings:
        return None
    explicit = {k: v for k, v in values.items() if v is not None}
    merged = {k: v for k, v in old.settings.items() if k in Settings.model_fields}
    merged.update(explicit)
    sources = {
        key: "cli" if key in explicit else old.settings_sources.get(key, "saved run")
        for key in Settings.model_fields
    }
    try:
        settings = Settings.model_validate(merged)
    except Exception as exc:  # pydantic.ValidationError, imported lazily
        from unattended.supervisor.run.settings import _validation_message

        fail(f"cannot resume run {old.run_id}: {_validation_message(exc, sources)}")
    return settings, sources


def _last_run_words(top: Path) -> str:
    """How the last run ended, for the refusal of a --resume with nothing to resume."""
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.records.state import read_state

    old = read_state(RunPaths(top))  # readable: _resume_settings refused it otherwise
    if old is None:
        return "no run has started here yet"
    if not old.status.terminal:
        return f"the last run, {old.run_id}, has no saved settings to resume with"
    ended = f"{old.updated_at:%Y-%m-%dT%H:%M:%SZ}"
    why = f": {old.stop_reason}" if old.stop_reason else ""
    return (
        f"the last run, {old.run_id}, ended {old.status.value} (exit {old.exit_code}) "
        f"at {ended}{why}"
    )


def _switch_branch(top: Path, branch: str) -> None:
    from unattended.supervisor.git.facts import GitError, switch_branch

    try:
        switch_branch(top, branch, create_from_head=True)
    except GitError as exc:
        fail(f"cannot switch to branch {branch}: {exc}")


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
    )
    code = run_start(opts, values)
    raise typer.Exit(code)
