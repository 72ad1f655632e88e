"""The few lines the final notification carries, from what the loop already holds in memory
(the morning report, ``views.report``, reads the same story back from the files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from unattended.contracts.iteration import IterationRecord
from unattended.contracts.state import RunState
from unattended.contracts.timefmt import fmt_duration


def summary_range(
    first_head: str | None, history: Sequence[IterationRecord]
) -> tuple[str | None, str | None]:
    """The HEADs before the run's first and after its last iteration: the run's commits."""
    last = history[-1].git_after.head if history else None
    return first_head, last


def notification_summary(
    project: Path,
    state: RunState,
    history: Sequence[IterationRecord],
    now: float,
    commits: list[tuple[str, str]],
    max_lines: int = 8,
) -> str:
    """Headline, why, the last commits (``commits``: (sha, subject) oldest first), and what the
    worker raised for a human (in the iterations still held: ``history`` is a window)."""
    elapsed = fmt_duration(max(0.0, now - state.started_at.timestamp()))
    lines = [
        f"{project.name}: {state.status.value} after {state.iteration} iteration(s) in "
        f"{elapsed}, ${state.cost_usd:.2f}, {len(commits)} commit(s)"
    ]
    if state.stop_reason:
        lines.append(f"why: {state.stop_reason}")
    lines += state.on_done_lines()  # the pushed branch and the pull request, or why not
    lines += [f"commit: {subject}" for _sha, subject in commits[-3:]]
    denied = sorted({tool for record in history for tool in record.permission_denials})
    if denied:
        lines.append(f"needs you: permission denied for {', '.join(denied)}")
    return "\n".join(lines[:max_lines])
