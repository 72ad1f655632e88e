"""``unattended doctor``: what is wrong with this setup, before a night is wasted.

One line per check, with the fix when it is not ok. Exit 0 when every required check passes
(config, claude binary, authentication, git work tree, permission mode, and the live spawn with
``--live``), 1 otherwise; warnings never change the exit code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from unattended.supervisor.cli.common import ProjectOpt, project_dir

TAGS = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


def doctor(
    project: ProjectOpt = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Also spawn the worker once with a tiny prompt (costs a fraction of a cent).",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check the claude binary, authentication, git, permissions and the platform helpers."""
    checks = run_checks(project_dir(project), dict(os.environ), live)
    failed = [c for c in checks if c.level == "fail"]
    warned = [c for c in checks if c.level == "warn"]
    if json_out:
        doc = {"ok": not failed, "checks": [c.as_dict() for c in checks]}
        typer.echo(json.dumps(doc, indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            line = f"{TAGS[check.level]:<4}  {check.name:<{width}}  {check.message}"
            if check.fix:
                line += f"; fix: {check.fix}"
            typer.echo(line)
        if failed:
            names = ", ".join(c.name for c in failed)
            typer.echo(f"{len(failed)} required check(s) failed ({names}): a run would not work")
        else:
            typer.echo(f"ready: all required checks pass ({len(warned)} warning(s))")
    raise typer.Exit(1 if failed else 0)


def run_checks(project: Path, environ: dict[str, str], live: bool) -> list:  # list[Check]
    from unattended.supervisor.views import doctor as dc

    settings, config = dc.load_settings(project, environ)
    claude, binary = dc.check_claude(settings, environ)
    import platform

    from unattended import __version__

    version = dc.ok("version", f"unattended {__version__} (Python {platform.python_version()})")
    where = dc.ok("project", f"{project} (the work tree's top, as `start` uses it)")
    checks = [version, where, config, claude, dc.check_auth(environ, project)]
    checks += dc.preflight_checks(project, settings, environ)
    checks += [
        dc.check_context_source(settings, environ),
        dc.check_notifications(settings, environ),
        dc.check_inhibitor(environ),
        dc.check_service_manager(environ),
        dc.check_installed_units(environ),
        dc.check_disk(project),
        dc.check_context_meter(project),
        dc.check_quota(project, settings),
        dc.check_forge(project, settings, environ),
    ]
    if live:
        checks.append(dc.check_live(project, settings, binary, environ))
    return checks
