"""The project a command means: the top of the git work tree around a directory, found the way
``start`` finds it (``git rev-parse --show-toplevel``) but without a git process, so ``status``
stays fast. Standard library only: the ``status`` fast path imports this before typer."""

from __future__ import annotations

import os
from pathlib import Path


def work_tree_top(path: Path) -> Path | None:
    """The nearest directory at or above ``path`` holding a ``.git`` entry (a directory, or the
    file of a linked work tree or submodule); None outside any work tree. A ``.git`` inside a
    ``.git`` directory (the git dir itself) does not count."""
    current = path.resolve()
    for candidate in (current, *current.parents):
        if candidate.name == ".git":
            continue
        if os.path.lexists(candidate / ".git"):
            return candidate
    return None


def project_top(path: Path) -> Path:
    """The work tree's top when ``path`` is inside one, else ``path`` itself (resolved)."""
    return work_tree_top(path) or path.resolve()
