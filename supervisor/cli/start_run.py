"""``unattended start`` without the CLI framework: settings, preflight, lock, then a detached
(or foreground) daemon. Reached from ``entry``'s fast path (no typer) and from the typer command.

The repository's facts are gathered once (where it is: one git call; its status: one more) and
passed on to preflight and the branch switch.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from unattended.supervisor.cli.plain import echo, fail, locate, project_dir


@dataclass
class StartOptions:
    INVOCATION: ClassVar[tuple[str, ...]] = (
        "project",
        "foreground",
        "dry_run",
        "resume",
        "resume_or_start",
        "json_out",
        "run_id",
    )

    project: Path | None
    foreground: bool
    dry_run: bool
    resume: bool
    json_out: bool
    resume_or_start: bool = False  # --resume, or a new run when there is nothing to resume
    run_id: str | None = None  # a new run's id chosen by the caller (a Kubernetes Job's name)


def _print_checks(checks: list[Any]) -> None:
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        first, *rest = check.message.splitlines() or [""]
        echo(f"[{mark}] {check.name}: {first}")
        for line in rest:
            echo(f"       {line}")


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

    if opts.run_id is not None:
        import re

        from unattended.contracts.timefmt import RUN_ID_PATTERN

        if not re.match(RUN_ID_PATTERN, opts.run_id):
            fail(f"--run-id {opts.run_id!r}: use 1 to 100 letters, digits, '.', '_' or '-'")
    project = project_dir(opts.project)
    located = locate(project)
    top, git_dir, _ = located
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

    gathered = gather_mod.gather(top, settings, environ, located)
    checks = preflight(gathered.facts, settings, settings.branch)
    from unattended.supervisor.run.forge import forge_checks

    checks += forge_checks(top, settings, environ)
    secrets_warning = snapshot_ignored_warning(settings)
    if opts.dry_run:
        _print_checks(checks)
        if secrets_warning:
            echo(f"[warn] snapshots: {secrets_warning}")
        refusals = [c.message for c in checks if not c.ok]
        plan_prompt = "<prompt>"
        if gathered.prompt is not None:
            try:
                plan_prompt = build_prompt(read_prompt(gathered.prompt))
            except PromptError as exc:
                echo(f"[FAIL] prompt: {exc}")
                refusals.append(str(exc))
        plan = WorkerPlan(1, plan_prompt, settings.model, None)
        argv = build_argv(settings, plan, RunPaths(top).worker_settings)
        argv[0] = gathered.claude_bin or argv[0]
        echo("worker command: " + shlex.join(argv))
        size = f"{len(plan_prompt.encode())} bytes" if plan_prompt != "<prompt>" else "none"
        echo(f"worker stdin: the prompt + protocol ({size}), never on the command line")
        echo(f"worker cwd: {top}")
        if refusals:  # the refusal a real start would print, where every refusal goes
            echo(f"unattended: {refusals[0].splitlines()[0]}", err=True)
            return 2
        return 0
    failed = [c for c in checks if not c.ok]
    if failed:
        fail(failed[0].message)
    if secrets_warning:
        echo(f"unattended: warning: {secrets_warning}", err=True)
    assert gathered.prompt is not None
    try:
        read_prompt(gathered.prompt)
    except PromptError as exc:
        fail(str(exc))
    settings.claude_bin = gathered.claude_bin or settings.claude_bin

    lock = RunLock(lock_path(git_dir))
    try:
        lock.acquire()
        if settings.branch and settings.branch != gathered.facts.branch:  # type: ignore[attr-defined]
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
        run_id=opts.run_id,
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
        echo(
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
        echo(f"unattended: started daemon pid {pid} (run {run_id}) for {top}")
        echo(f"log: {paths.run_log}   (unattended logs -f; unattended status)")
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
