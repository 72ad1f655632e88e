"""``unattended report``: write the morning report of the last run (report.md + PNG charts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from unattended.supervisor.cli.common import ProjectOpt, fail, project_dir


def report(
    project: ProjectOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory for report.md and charts (default: .unattended/reports/RUN_ID).",
        ),
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Report on this run id instead of the last one.")
    ] = None,
) -> None:
    """Write the morning report: what was asked, how it ended, commits, files, cost, charts."""
    from unattended.supervisor.views.report import NoRunError

    root = project_dir(project)
    try:
        md_path, note = write_report(root, out, run)
    except NoRunError as exc:
        fail(str(exc), 1)
    except OSError as exc:
        fail(f"cannot write the report: {exc.strerror or exc} ({getattr(exc, 'filename', '')})")
    typer.echo(f"wrote {md_path} (project {root})")
    if note:
        typer.echo(note)


def write_report(project: Path, out: Path | None, run_id: str | None) -> tuple[Path, str | None]:
    """(path of report.md, one-line note when charts were skipped)."""
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.cli.common import warn
    from unattended.supervisor.records.fsio import atomic_write, ensure_private_dir
    from unattended.supervisor.views.charts import MISSING_NOTE, write_charts
    from unattended.supervisor.views.report import gather_report, render_markdown

    data = gather_report(project, run_id, warn)
    out_dir = out.expanduser() if out else RunPaths(project).reports / data.run.run_id
    out_dir = out_dir if out_dir.is_absolute() else Path.cwd() / out_dir
    ensure_private_dir(out_dir)  # under .unattended/: no symlink followed, 0700
    note = None
    if data.run.telemetry:
        cap = data.settings.get("max_cost_usd")
        try:
            data.charts = write_charts(data.run.telemetry, cap, out_dir)
        except ImportError:
            note = MISSING_NOTE
            data.chart_note = note
    md_path = out_dir / "report.md"
    atomic_write(md_path, render_markdown(data))  # 0600, as the README promises
    return md_path, note
