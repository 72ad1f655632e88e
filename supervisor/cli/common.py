"""What every command shares: the ``--project`` option, one-line failures, and finding the
project (the work tree's top, as ``start`` resolves it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from unattended.supervisor.cli.plain import fail, git_top, project_dir, warn

ProjectOpt = Annotated[
    Path | None,
    typer.Option("--project", help="Project directory (default: current directory)."),
]

__all__ = ["ProjectOpt", "fail", "git_top", "project_dir", "warn"]
