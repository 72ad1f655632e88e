"""What commands share that needs no CLI framework: one-line failures, finding the project.

``start`` runs without typer on its fast path (see ``entry``), so these must not import it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn


def echo(message: str = "", err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")
    stream.flush()


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line (plus optional detail lines) on stderr, a non-zero exit, no traceback."""
    echo(f"unattended: {message}", err=True)
    raise SystemExit(code)


def warn(message: str) -> None:
    """One line on stderr that does not stop the command."""
    echo(f"unattended: {message}", err=True)


def project_dir(project: Path | None) -> Path:
    """The project as ``start`` resolves it: the top of the work tree around ``--project`` (or
    the current directory), so a command run from ``repo/src`` sees the run ``start`` began."""
    from unattended.supervisor.git.top import project_top

    path = (project or Path.cwd()).expanduser()
    if not path.is_dir():
        fail(f"project directory not found: {path}")
    return project_top(path)


def locate(path: Path) -> tuple[Path, Path, Path]:
    """(work-tree top, absolute git dir, common git dir) in one git call; exit 2 when ``path``
    is not in a git work tree, has a control character, or git cannot run."""
    from unattended.supervisor.git.facts import GitError, NotAGitRepo, locate_repo

    if any(not c.isprintable() for c in str(path)):
        fail(
            f"the project path {str(path)!r} contains a newline or another control character: "
            "git's output, run.log and the worker's settings cannot carry it; rename the "
            "directory"
        )
    try:
        return locate_repo(path)
    except NotAGitRepo:
        fail(f"{path} is not inside a git work tree: run `git init` there, or pass --project DIR")
    except GitError as exc:  # git missing from PATH, or failing on this repository
        fail(str(exc))


def git_top(path: Path) -> tuple[Path, Path]:
    """(work-tree top, absolute git dir); exit 2 when ``path`` is not in a git work tree."""
    top, git_dir, _ = locate(path)
    return top, git_dir
