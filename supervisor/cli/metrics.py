"""``unattended metrics``: tables over the telemetry of the current and archived runs.

Sections: tokens/cost/duration per group (``--by``), fresh vs resumed sessions, why runs ended
(``--halts``), context bands reached per iteration (``--context``). ``--json`` prints the same
sections as one object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from unattended.supervisor.cli.common import ProjectOpt, fail, project_dir

BY_CHOICES = ("run", "model", "outcome", "day", "session")


def metrics(
    project: ProjectOpt = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Group by model, outcome, day, run or session (default: run)."),
    ] = None,
    halts: Annotated[bool, typer.Option("--halts", help="Why each run ended.")] = False,
    context: Annotated[
        bool, typer.Option("--context", help="Context bands reached per iteration.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    prometheus: Annotated[
        bool,
        typer.Option(
            "--prometheus",
            help="Every run of this user (from the registry) in the Prometheus text format.",
        ),
    ] = False,
) -> None:
    """Tokens, cost and time per group, why runs ended, context bands (from telemetry)."""
    if prometheus:
        typer.echo(prometheus_text(), nl=False)
        return
    if by is not None and by not in BY_CHOICES:
        fail(f"--by must be one of {', '.join(BY_CHOICES)}, not {by!r}")
    root = project_dir(project)
    data = collect(root, by, halts, context)
    if json_out:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(render(data, root))
    if data["runs"]:
        typer.echo(f"project: {root}")


def collect(root: Path, by: str | None, halts: bool, context: bool) -> dict[str, Any]:
    """The sections asked for: groups (and sessions) unless only --halts/--context were given."""
    from unattended.supervisor.cli.common import warn
    from unattended.supervisor.records.readers import all_telemetry, load_runs
    from unattended.supervisor.views import metrics as mc

    runs = load_runs(root, warn=warn)
    lines = all_telemetry(runs)
    data: dict[str, Any] = {
        "project": str(root),
        "runs": len(runs),
        "bad_lines": sum(r.bad_lines for r in runs),
        "totals": mc.total(lines).as_dict(),
    }
    show_groups = by is not None or not (halts or context)
    if show_groups:
        data["by"] = by or "run"
        data["groups"] = [g.as_dict() for g in mc.group_by(lines, by or "run")]
        if by is None:
            data["sessions"] = [g.as_dict() for g in mc.group_by(lines, "session")]
    if halts:
        data["halts"] = mc.halts(runs)
    if context:
        data["context"] = {"bands": mc.band_counts(lines), "iterations": mc.context_rows(lines)}
    return data


def _group_table(title: str, groups: list[dict[str, Any]]) -> str:
    from unattended.contracts.timefmt import fmt_duration
    from unattended.supervisor.views.text import fmt_tokens, text_table

    headers = [title, "iters", "tokens", "cache read", "cost", "$/iter", "time", "time/iter"]
    rows = [
        [
            g["key"],
            str(g["iterations"]),
            fmt_tokens(g["tokens"]),
            fmt_tokens(g["cache_read_tokens"]),
            f"${g['cost_usd']:.2f}",
            f"${g['cost_per_iteration_usd']:.2f}",
            fmt_duration(g["duration_s"]),
            fmt_duration(g["duration_per_iteration_s"]),
        ]
        for g in groups
    ]
    return text_table(headers, rows, right=set(range(1, 8)))


def render(data: dict[str, Any], root: Path) -> str:
    from unattended.supervisor.views.text import fmt_tokens, text_table

    totals = data["totals"]
    if not data["runs"]:
        return f"no runs yet in {root} (telemetry appears after the first iteration)"
    parts = [
        f"{data['runs']} run(s), {totals['iterations']} iteration(s), "
        f"{fmt_tokens(totals['tokens'])} tokens (+{fmt_tokens(totals['cache_read_tokens'])} "
        f"cache read), ${totals['cost_usd']:.2f}"
    ]
    if data["bad_lines"]:
        parts[0] += f" ({data['bad_lines']} unreadable telemetry line(s) skipped)"
    if "groups" in data:
        parts.append(_group_table(data["by"], data["groups"]))
    if data.get("sessions"):
        parts.append(_group_table("session", data["sessions"]))
    if "halts" in data:
        rows = [
            [
                h["run_id"],
                h["status"],
                str(h["iterations"]),
                f"${h['cost_usd']:.2f}",
                str(h["compactions"]) if h["compactions"] else "",
                h["reason"] or "",
            ]
            for h in data["halts"]
        ]
        headers = ["run", "ended", "iters", "cost", "compacted", "why"]
        parts.append(text_table(headers, rows, right={2, 3, 4}) if rows else "no runs")
    if "context" in data:
        bands = data["context"]["bands"]
        parts.append("context bands: " + ", ".join(f"{k} {v}" for k, v in bands.items()))
        rows = [
            [
                c["run_id"],
                str(c["iteration"]),
                fmt_tokens(c["context_peak_tokens"]),
                "" if c["context_pct"] is None else f"{c['context_pct']:.0f}%",
                c["context_band"] or "?",
                "yes" if c["handed_off"] else "",
                "resumed" if c["resumed_session"] else "fresh",
            ]
            for c in data["context"]["iterations"]
        ]
        if rows:
            headers = ["run", "iter", "peak", "pct", "band", "handoff", "session"]
            parts.append(text_table(headers, rows, right={1, 2, 3}))
    return "\n\n".join(parts)


def prometheus_text() -> str:
    """The registry's runs, each joined with its state.json, as one exposition."""
    from unattended.contracts.paths import RunPaths
    from unattended.contracts.state import StateFileError
    from unattended.supervisor.records import prometheus as prom
    from unattended.supervisor.records.state import read_state
    from unattended.supervisor.run.registry import scan

    rows, problems = scan()
    samples = []
    for row in rows:
        paths = RunPaths(Path(row.project))
        try:
            state = read_state(paths)
        except StateFileError as exc:
            problems.append(str(exc))
            continue
        if state is None or state.run_id != row.run_id:
            continue
        branch = prom.project_branch(Path(row.project))
        ratio = prom.context_ratio(paths.context_meter)
        samples.append(prom.RunSample(state, row.status, branch, ratio))
    for line in problems:
        typer.echo(f"unattended: skipping: {line}", err=True)
    return prom.render(samples)
