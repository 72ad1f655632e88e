"""What every command shares: the ``--project`` option, one-line failures, and finding the
project (the work tree's top, as ``start`` resolves it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", help="Project directory (default: current directory)."),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line (plus optional detail lines) on stderr, a non-zero exit, no traceback."""
    typer.echo(f"unattended: {message}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """One line on stderr that does not stop the command."""
    typer.echo(f"unattended: {message}", err=True)


def project_dir(project: Path | None) -> Path:
    """The project as ``start`` resolves it: the top of the work tree around ``--project`` (or
    the current directory), so a command run from ``repo/src`` sees the run ``start`` began."""
    from unattended.supervisor.git.top import project_top

    path = (project or Path.cwd()).expanduser()
    if not path.is_dir():
        fail(f"project directory not found: {path}")
    return project_top(path)


def git_top(path: Path) -> tuple[Path, Path]:
    """(work-tree top, absolute git dir); exit 2 when ``path`` is not in a git work tree."""
    from unattended.supervisor.git.facts import GitError, NotAGitRepo, gather_repo_facts

    if any(not c.isprintable() for c in str(path)):
        fail(
            f"the project path {str(path)!r} contains a newline or another control character: "
            "git's output, run.log and the worker's settings cannot carry it; rename the "
            "directory"
        )
    try:
        facts = gather_repo_facts(path, ())
    except NotAGitRepo:
        fail(f"{path} is not inside a git work tree: run `git init` there, or pass --project DIR")
    except GitError as exc:  # git missing from PATH, or failing on this repository
        fail(str(exc))
    return facts.top, facts.git_dir
