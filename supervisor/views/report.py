"""The morning report: what was asked, how the run ended and why, commits, files, blockers,
handoff notes and cost, as Markdown (``report.md``) and as a short plain-text summary for a
notification (:func:`summary_text`).

Gathering reads files and asks git; rendering is pure. Charts live in ``report_charts``
(matplotlib is an optional extra).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unattended.supervisor.records.readers import RunRecord
    from unattended.supervisor.views.metrics import Group

PROMPT_LINES = 10
HANDOFF_LINES = 40
MAX_COMMITS = 200
MAX_FILES = 100
_QUESTION = re.compile(r"question|\bblocked\b", re.IGNORECASE)


class NoRunError(Exception):
    """The project has no run to report on."""


@dataclass
class ReportData:
    project: Path
    run: RunRecord
    status: str
    prompt_source: str
    prompt_lines: list[str]
    prompt_more: int  # lines not shown
    prompt_edited: bool  # the prompt file changed after the run started
    head_before: str | None
    head_after: str | None
    commits: list[tuple[str, str]]
    files: list[tuple[str, str]]  # (git status letter, path)
    blockers: list[str]
    handoffs: list[tuple[int, list[str], int]]  # (iteration, lines shown, lines left out)
    totals: Group
    by_model: list[Group]
    settings: dict[str, Any] = field(default_factory=dict)
    charts: list[Path] = field(default_factory=list)
    chart_note: str | None = None

    @property
    def ended_at(self) -> datetime | None:
        state = self.run.state
        if self.run.telemetry:
            last = self.run.telemetry[-1].time
            return max(last, state.updated_at) if state else last
        return state.updated_at if state else None


def _pick_run(
    project: Path, run_id: str | None, warn: Callable[[str], None] | None = None
) -> RunRecord:
    from unattended.supervisor.records.readers import load_runs

    runs = load_runs(project, warn=warn)
    if run_id is not None:
        for run in runs:
            if run.run_id == run_id:
                return run
        raise NoRunError(f"no run {run_id!r} in {project}/.unattended (see `unattended metrics`)")
    if not runs:
        raise NoRunError(f"no run yet in {project} (start one with `unattended start`)")
    return runs[-1]


def _prompt(project: Path, run: RunRecord, limit: int) -> tuple[str, list[str], int, bool]:
    settings = run.state.settings if run.state else {}
    text = settings.get("prompt")
    if isinstance(text, str):
        lines = text.splitlines()
        return "--prompt", lines[:limit], max(0, len(lines) - limit), False
    name = settings.get("prompt_file") or "PROMPT.md"
    path = Path(name).expanduser()
    path = path if path.is_absolute() else project / path
    try:
        lines = path.read_text(errors="replace").splitlines()
        mtime = path.stat().st_mtime
    except OSError:
        return f"{name} (no longer readable)", [], 0, False
    edited = run.state is not None and mtime > run.state.started_at.timestamp() + 1
    return str(name), lines[:limit], max(0, len(lines) - limit), edited


def _changed_files(project: Path, before: str | None, after: str | None) -> list[tuple[str, str]]:
    from unattended.supervisor.git.facts import empty_tree, run_git

    if not after or before == after:
        return []
    try:
        base = before or empty_tree(project)
        out = run_git(
            project,
            "diff-tree",
            "-r",
            "-z",
            "--no-renames",
            "--name-status",
            base,
            after,
            check=False,
        )
    except Exception:  # noqa: BLE001 - git trouble: the report says nothing changed
        return []
    fields = [f for f in out.split("\0") if f]
    return [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]


def _blockers(run: RunRecord, project: Path) -> list[str]:
    """What the worker raised for a human: blocked reasons, final questions, denied tools."""
    found: list[str] = []
    for t in run.telemetry:
        if t.reason and (t.outcome.value == "blocked" or "question" in t.reason.lower()):
            found.append(f"iteration {t.iteration}: {t.reason}")
        if t.permission_denials:
            tools = sorted(set(t.permission_denials))
            found.append(
                f"iteration {t.iteration}: permission denied for {', '.join(tools)} "
                f"({len(t.permission_denials)} call(s))"
            )
    state = run.state
    blocked = state is not None and state.status.value == "blocked" and state.stop_reason
    if blocked and not any(state.stop_reason in item for item in found):
        found.append(f"run: {state.stop_reason}")
    if not run.telemetry and state is not None:
        from unattended.contracts.paths import RunPaths
        from unattended.supervisor.records.readers import run_log_lines

        since = state.started_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = run_log_lines(RunPaths(project).run_log, since)
        found += [ln for ln in lines if _QUESTION.search(ln)]
    return found


def _handoffs(run: RunRecord, limit: int) -> list[tuple[int, list[str], int]]:
    notes: list[tuple[int, list[str], int]] = []
    for path in sorted(run.iterations_dir.glob("*.handoff.md")):
        try:
            number = int(path.name.split(".", 1)[0])
            lines = path.read_text(errors="replace").rstrip().splitlines()
        except (ValueError, OSError):
            continue
        notes.append((number, lines[:limit], max(0, len(lines) - limit)))
    return notes


def gather_report(
    project: Path, run_id: str | None = None, warn: Callable[[str], None] | None = None
) -> ReportData:
    """Everything the report says about one run (the last one by default). No charts.
    ``warn`` hears one line per unreadable state.json among the runs."""
    from unattended.supervisor.git.facts import commit_range_summary
    from unattended.supervisor.records.liveness import effective_status
    from unattended.supervisor.views import metrics as mc

    run = _pick_run(project, run_id, warn)
    state = run.state
    if state is None:
        status = "unknown"
    elif run.current:
        status = effective_status(state)[0]
    else:
        status = state.status.value if state.status.terminal else "crashed"
    source, prompt_lines, more, edited = _prompt(project, run, PROMPT_LINES)
    befores = [t.head_before for t in run.telemetry if t.head_before]
    afters = [t.head_after for t in run.telemetry if t.head_after]
    before = befores[0] if befores else None
    after = afters[-1] if afters else None
    try:
        commits = commit_range_summary(project, before, after, MAX_COMMITS) if after else []
    except Exception:  # noqa: BLE001 - no git, or history rewritten: report without commits
        commits = []
    return ReportData(
        project=project,
        run=run,
        status=status,
        prompt_source=source,
        prompt_lines=prompt_lines,
        prompt_more=more,
        prompt_edited=edited,
        head_before=before,
        head_after=after,
        commits=commits,
        files=_changed_files(project, before, after),
        blockers=_blockers(run, project),
        handoffs=_handoffs(run, HANDOFF_LINES),
        totals=mc.total(run.telemetry),
        by_model=mc.group_by(run.telemetry, "model"),
        settings=dict(state.settings) if state else {},
    )


def _iso(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "?"


def _elapsed(data: ReportData) -> str:
    from unattended.contracts.timefmt import fmt_duration

    state, end = data.run.state, data.ended_at
    if state is None or end is None:
        return "?"
    return fmt_duration((end - state.started_at).total_seconds())


def headline(data: ReportData) -> str:
    """One line: how it ended, how long, how much."""
    state = data.run.state
    iterations = state.iteration if state else len(data.run.telemetry)
    cost = state.cost_usd if state else data.totals.cost_usd
    return (
        f"{data.status} after {iterations} iteration(s) in {_elapsed(data)}, ${cost:.2f}, "
        f"{len(data.commits)} commit(s), {len(data.files)} file(s) changed"
    )


def _caps(data: ReportData) -> list[str]:
    from unattended.supervisor.views.text import fmt_tokens

    s, t = data.settings, data.totals
    lines = []
    cap = s.get("max_cost_usd")
    lines.append(
        f"- Cost: ${t.cost_usd:.2f}"
        + (f" of the ${cap:.2f} cap ({100 * t.cost_usd / cap:.0f} %)" if cap else " (no cost cap)")
    )
    if (
        t.cost_usd_cli
        and t.cost_usd_priced
        and abs(t.cost_usd_cli - t.cost_usd_priced) > max(0.01, 0.01 * t.cost_usd)
    ):
        lines.append(
            f"- The CLI reported ${t.cost_usd_cli:.2f}, published prices give "
            f"${t.cost_usd_priced:.2f}: the larger of the two per iteration is what counts"
        )
    cap = s.get("max_tokens")
    lines.append(
        f"- Tokens: {t.tokens:,} (input {t.input_tokens:,}, output {t.output_tokens:,}, cache "
        f"write {t.cache_creation_tokens:,})"
        + (f" of the {fmt_tokens(cap)} cap" if cap else "")
        + f"; cache reads {t.cache_read_tokens:,}"
    )
    if t.iterations:
        lines.append(
            f"- Per iteration: ${t.cost_per_iteration:.2f} and "
            f"{fmt_tokens(t.tokens / t.iterations)} tokens on average"
        )
    return lines


def render_markdown(data: ReportData) -> str:
    """The report as Markdown; charts are linked when they were written."""
    from unattended.contracts.timefmt import fmt_duration

    run, state = data.run, data.run.state
    out = [f"# Run report: {data.project.name} ({run.run_id})", "", f"**{headline(data)}**", ""]
    out += [
        "## What was asked",
        "",
        f"Prompt from {data.prompt_source}"
        + (
            " (edited during or after the run; this is its current text)"
            if data.prompt_edited
            else ""
        )
        + ":",
        "",
    ]
    if data.prompt_lines:
        out += ["```text", *data.prompt_lines, "```"]
        if data.prompt_more:
            out.append(f"({data.prompt_more} more line(s))")
    else:
        out.append("(prompt not available)")
    out += ["", "## How it ended", ""]
    if state is not None:
        out.append(
            f"- Status: {data.status}"
            + (f" (exit {state.exit_code})" if state.exit_code is not None else "")
        )
        out.append(f"- Why: {state.stop_reason or 'still running'}")
        out.append(
            f"- Started {_iso(state.started_at)}, last activity {_iso(data.ended_at)}, "
            f"deadline {_iso(state.deadline)}"
        )
        out.append(f"- Iterations: {state.iteration} of at most {state.max_iterations}")
        out += [f"- {line[0].upper()}{line[1:]}" for line in state.on_done_lines()]
    else:
        out.append(f"- Status unknown: {run.state_error or 'no state.json'}")
    out += ["", "## Commits", ""]
    if data.commits:
        rng = f"{(data.head_before or '(root)')[:12]}..{(data.head_after or '')[:12]}"
        out += [f"`git log {rng}`: {len(data.commits)} commit(s)", ""]
        out += [f"- `{sha[:12]}` {subject}" for sha, subject in data.commits]
    else:
        out.append("No commits.")
    out += ["", "## Files changed", ""]
    if data.files:
        out += [f"- {status} `{path}`" for status, path in data.files[:MAX_FILES]]
        if len(data.files) > MAX_FILES:
            out.append(f"- … and {len(data.files) - MAX_FILES} more")
    else:
        out.append("None.")
    out += ["", "## Blockers and questions", ""]
    out += [f"- {item}" for item in data.blockers] or ["None raised."]
    out += ["", "## Handoff notes", ""]
    if data.handoffs:
        for number, lines, more in data.handoffs:
            out += [f"From iteration {number}:", ""]
            out += [f"> {line}".rstrip() for line in lines]
            if more:
                out.append(f"> (… {more} more line(s) in iterations/{number:04d}.handoff.md)")
            out.append("")
        out.pop()
    else:
        out.append("None written.")
    out += _steps(data)
    out += ["", "## Cost", "", *_caps(data)]
    if len(data.by_model) > 1:
        out += [
            f"- {g.key}: ${g.cost_usd:.2f} over {g.iterations} iteration(s)" for g in data.by_model
        ]
    out += ["", "## Iterations", ""]
    if run.telemetry:
        out += [
            "| # | outcome | time | cost | commits | context | session |",
            "|---:|---|---:|---:|---:|---|---|",
        ]
        for t in run.telemetry:
            ctx = (
                f"{t.context_pct:.0f} % {t.context_band or ''}"
                if t.context_pct is not None
                else (t.context_band or "")
            )
            session = "resumed" if t.resumed_session else "fresh"
            session += ", handoff" if t.handed_off else ""
            out.append(
                f"| {t.iteration} | {t.outcome.value} | {fmt_duration(t.duration_s)} | "
                f"${t.total_cost_usd:.2f} | {t.commits} | {ctx.strip()} | {session} |"
            )
    else:
        out.append("No iteration finished.")
    if data.charts or data.chart_note:
        out += ["", "## Charts", ""]
        out += [f"![{p.stem.replace('_', ' ')}]({p.name})" for p in data.charts]
        if data.chart_note:
            out.append(data.chart_note)
    return "\n".join(out) + "\n"


def _steps(data: ReportData) -> list[str]:
    """The steps workers reported with `unattended step` (a section only when there are any)."""
    rows = []
    for t in data.run.telemetry:
        for step in getattr(t, "steps", None) or []:
            status = getattr(step, "status", "OK")
            desc = getattr(step, "desc", "")
            rows.append(
                f"- iteration {t.iteration}, step {getattr(step, 'step', '?')}: {desc} ({status})"
            )
    return ["", "## Steps reported", "", *rows] if rows else []
