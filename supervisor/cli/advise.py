"""``unattended advise``: settings worth changing, from the telemetry of every run, with the
evidence; ``--apply ID`` writes one into ``unattended.toml`` (comments and the rest of the file
kept), ``--reject ID`` hides it for the next five runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unattended.supervisor.cli.common import ProjectOpt, fail, project_dir, warn


def advise(
    project: ProjectOpt = None,
    apply: Annotated[
        str | None, typer.Option("--apply", help="Write this recommendation's setting.")
    ] = None,
    reject: Annotated[
        str | None, typer.Option("--reject", help="Hide this recommendation for 5 runs.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Recommend settings from what past runs did (each with its evidence and an id)."""
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.records.readers import load_runs
    from unattended.supervisor.run.settings import ConfigError, resolve_settings
    from unattended.supervisor.views import advice

    if apply and reject:
        fail("--apply and --reject exclude each other")
    root = project_dir(project)
    try:
        settings, _ = resolve_settings(root, {})
    except ConfigError as exc:
        fail(str(exc))
    runs = load_runs(root, warn=warn)
    run_ids = [r.run_id for r in runs]
    state_dir = RunPaths(root).records
    recs = advice.recommend(runs, settings)
    wanted = apply or reject
    if wanted:
        rec = next((r for r in recs if r.id == wanted), None)
        if rec is None:
            known = ", ".join(r.id for r in recs) or "none right now"
            fail(f"no recommendation {wanted!r} (current ones: {known}); see `unattended advise`")
        if apply:
            path = apply_setting(root, rec)
            advice.record_decision(state_dir, rec, "applied", run_ids)
            _say(
                json_out,
                {"applied": rec.as_dict(), "file": str(path)},
                f"{path.name}: {rec.key} = {_fmt(rec.value)} (was {_fmt(rec.current)}); "
                "takes effect at the next `unattended start`",
            )
        else:
            advice.record_decision(state_dir, rec, "rejected", run_ids)
            _say(
                json_out,
                {"rejected": rec.as_dict()},
                f"rejected {rec.id}: not proposed again for the next {advice.SUPPRESS_RUNS} runs",
            )
        return
    decisions = advice.load_decisions(state_dir)
    shown = [r for r in recs if advice.suppressed(r, decisions, run_ids) is None]
    hidden = [r.id for r in recs if r not in shown]
    iterations = sum(len(r.telemetry) for r in runs)
    if json_out:
        doc = {
            "project": str(root),
            "runs": len(runs),
            "iterations": iterations,
            "recommendations": [r.as_dict() for r in shown],
            "suppressed": hidden,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(render(shown, hidden, len(runs), iterations))
    typer.echo(f"project: {root}")


def render(shown: list, hidden: list[str], runs: int, iterations: int) -> str:
    if not runs:
        return "no runs yet: advice comes from the telemetry of finished iterations"
    head = f"from {iterations} iteration(s) in {runs} run(s): "
    if not shown:
        lines = [head + "nothing to recommend"]
    else:
        lines = [head + f"{len(shown)} recommendation(s)", ""]
        for rec in shown:
            now = "" if rec.kind == "keep" else f" (now {_fmt(rec.current)})"
            lines += [f"[{rec.id}] {rec.evidence}", f"    -> {rec.action}{now}"]
        lines += ["", "apply one with `unattended advise --apply ID`, or hide it with --reject ID"]
    if hidden:
        lines.append(f"({len(hidden)} rejected or applied recently: {', '.join(hidden)})")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _say(json_out: bool, doc: dict, text: str) -> None:
    typer.echo(json.dumps(doc, indent=2) if json_out else text)


def apply_setting(root: Path, rec) -> Path:  # noqa: ANN001 - advice.Recommendation
    """Edit unattended.toml in place (atomically), refusing a result that does not validate."""
    import tomllib

    from unattended.contracts.settings import SETTINGS_FILE
    from unattended.supervisor.records.fsio import atomic_write
    from unattended.supervisor.run.settings import ConfigError, resolve_settings
    from unattended.supervisor.views.toml_edit import TomlEditError, set_key

    path = root / SETTINGS_FILE
    try:
        old = path.read_text() if path.exists() else ""
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        new = set_key(old, rec.key, rec.value, note=f"unattended advise: {rec.id}")
        tomllib.loads(new)
    except (TomlEditError, tomllib.TOMLDecodeError) as exc:
        fail(f"cannot edit {path} safely ({exc}): set {rec.key} = {_fmt(rec.value)} by hand")
    existed = path.exists()
    atomic_write(path, new, mode=mode)
    try:
        resolve_settings(root, {})
    except ConfigError as exc:
        if existed:
            atomic_write(path, old, mode=mode)
        else:
            path.unlink(missing_ok=True)
        fail(f"left {path} unchanged: the new value does not validate: {exc}")
    return path
