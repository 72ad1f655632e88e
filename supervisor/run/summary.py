"""The few lines the final notification carries, from what the loop already holds in memory
(the morning report, ``views.report``, reads the same story back from the files)."""

from __future__ import annotations

from pathlib import Path

from unattended.contracts.iteration import IterationRecord
from unattended.contracts.state import RunState
from unattended.contracts.timefmt import fmt_duration
from unattended.supervisor.git.facts import commit_range_summary


def notification_summary(
    project: Path, state: RunState, history: list[IterationRecord], now: float, max_lines: int = 8
) -> str:
    """Headline, why, the last commits, and what the worker raised for a human."""
    first = history[0].git_before.head if history and history[0].git_before else None
    last = history[-1].git_after.head if history and history[-1].git_after else None
    commits = commit_range_summary(project, first, last)
    elapsed = fmt_duration(max(0.0, now - state.started_at.timestamp()))
    lines = [
        f"{project.name}: {state.status.value} after {state.iteration} iteration(s) in "
        f"{elapsed}, ${state.cost_usd:.2f}, {len(commits)} commit(s)"
    ]
    if state.stop_reason:
        lines.append(f"why: {state.stop_reason}")
    lines += state.on_done_lines()  # the pushed branch and the pull request, or why not
    lines += state.on_done_lines()  # the same lines the morning report shows
    lines += [f"commit: {subject}" for _sha, subject in commits[-3:]]
    denied = sorted({tool for record in history for tool in record.permission_denials})
    if denied:
        lines.append(f"needs you: permission denied for {', '.join(denied)}")
    return "\n".join(lines[:max_lines])
