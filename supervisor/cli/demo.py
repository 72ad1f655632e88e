"""``unattended demo``: the real daemon, a throwaway repo, and a stub worker shipped in the
package, so a newcomer with no Claude account sees the product work in one command."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from unattended.contracts.names import ENV_DEMO_STEPS

DEMO_PROMPT = """Write a short demo-notes.md, one line per step, and commit each step.
(This is the demo: the worker is a stub shipped with unattended, not Claude.)
"""


def _git(repo: Path, *args: str) -> None:
    from unattended.supervisor.git.facts import run_git

    run_git(repo, *args)


def make_demo_repo(base: Path) -> tuple[Path, Path]:
    """A fresh git repo on a non-protected branch with a PROMPT.md, and the stub's launcher."""
    repo = base / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "demo-work")
    (repo / "README.md").write_text("# unattended demo\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "demo: initial commit")
    (repo / "PROMPT.md").write_text(DEMO_PROMPT)
    launcher = base / "stub-claude"
    stub = "unattended.supervisor.worker.stub"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {stub} "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return repo, launcher


def run_demo(steps: int) -> int:
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.cli.logs import follow_file
    from unattended.supervisor.cli.start_run import StartOptions, run_start
    from unattended.supervisor.records.liveness import pid_is_alive
    from unattended.supervisor.records.state import read_state

    base = Path(tempfile.mkdtemp(prefix="unattended-demo-"))
    identity = {
        "GIT_AUTHOR_NAME": "unattended demo",
        "GIT_AUTHOR_EMAIL": "demo@unattended.invalid",
        "GIT_COMMITTER_NAME": "unattended demo",
        "GIT_COMMITTER_EMAIL": "demo@unattended.invalid",
    }
    os.environ.update(identity)
    os.environ[ENV_DEMO_STEPS] = str(steps)
    # The stub worker needs no account, but `start` refuses to begin without a credential the
    # real CLI would accept: a placeholder the stub never sends anywhere (kept if one is set).
    os.environ.setdefault("ANTHROPIC_API_KEY", "unattended-demo-stub-no-network")
    repo, launcher = make_demo_repo(base)
    typer.echo(f"demo repository: {repo}")
    typer.echo(f"stub worker: {launcher} (makes one commit per iteration, done after {steps})")
    opts = StartOptions(project=repo, foreground=False, dry_run=False, resume=False, json_out=False)
    values = {
        "claude_bin": str(launcher),
        "allowed_tools": "Bash",
        "hours": 0.25,
        "max_iterations": steps + 2,
        "worker_timeout": 60.0,
        "grace_seconds": 2.0,
    }
    code = run_start(opts, values)
    if code != 0:
        return code
    paths = RunPaths(repo)
    state = read_state(paths)
    assert state is not None
    typer.echo("--- run.log ---")
    deadline = time.monotonic() + 120

    def keep_going() -> bool:
        return pid_is_alive(state.pid, state.pid_create_time) and time.monotonic() < deadline

    for line in follow_file(paths.run_log, keep_going, from_end=False):
        typer.echo(line)
    final = read_state(paths)
    typer.echo("---")
    if final is None or not final.status.terminal:
        typer.echo("unattended: the demo run did not finish in time", err=True)
        return 1
    from unattended.supervisor.git.facts import run_git

    log = run_git(repo, "log", "--oneline", check=False)
    typer.echo(f"the run ended {final.status.value}: {final.stop_reason}")
    typer.echo(f"commits made by the workers:\n{log.rstrip()}")
    typer.echo(f"look at: {paths.run_log}, {paths.state}, {paths.iterations}/")
    typer.echo(f"         unattended status --project {repo}")
    return 0 if final.status.value == "done" else 1

def demo(
    steps: Annotated[int, typer.Option(help="Iterations before the stub reports done.")] = 3,
) -> None:
    """Run the real daemon on a throwaway repo with a stub worker (no account needed)."""
    raise typer.Exit(run_demo(steps))
