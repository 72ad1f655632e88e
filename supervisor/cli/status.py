"""``unattended status``: what the run is doing, or how it ended (rendered by ``views.status``;
``entry`` serves the plain forms before typer is even imported)."""

from __future__ import annotations

from typing import Annotated

import typer

from unattended.supervisor.cli.common import ProjectOpt, project_dir


def status(
    project: ProjectOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show what the run is doing (or how it ended)."""
    from unattended.supervisor.views.status import show_status

    raise typer.Exit(show_status(project_dir(project), json_out))
