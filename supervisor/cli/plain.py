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


def project_dir(project: Path | None) -> Path:
    path = (project or Path.cwd()).expanduser()
    if not path.is_dir():
        fail(f"project directory not found: {path}")
    return path.resolve()


def locate(path: Path) -> tuple[Path, Path, Path]:
    """(work-tree top, absolute git dir, common git dir) in one git call; exit 2 when ``path``
    is not in a git work tree."""
    from unattended.supervisor.git.facts import NotAGitRepo, locate_repo

    try:
        return locate_repo(path)
    except NotAGitRepo:
        fail(f"{path} is not inside a git work tree: run `git init` there, or pass --project DIR")


def git_top(path: Path) -> tuple[Path, Path]:
    """(work-tree top, absolute git dir); exit 2 when ``path`` is not in a git work tree."""
    top, git_dir, _ = locate(path)
    return top, git_dir
