"""The final notification's summary, from the loop's own facts and a real git history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import git
from tests.supervisor.run.conftest import make_state
from unattended.contracts.iteration import GitPoint, IterationRecord
from unattended.supervisor.git.facts import commit_range_summary
from unattended.supervisor.run.summary import notification_summary


def test_summary_names_the_outcome_the_commits_and_what_needs_a_human(
    project: Path, hermetic_env: dict[str, str]
) -> None:
    first = git(project, "rev-parse", "HEAD")
    for subject in ("parser: accept tabs", "parser: document tabs", "names: NFC", "names: NFD"):
        (project / "f.txt").write_text(subject)
        git(project, "add", "f.txt", env=hermetic_env)
        git(project, "commit", "-qm", subject, env=hermetic_env)
    last = git(project, "rev-parse", "HEAD")
    now = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    state = make_state(project, 1, None, status="blocked", cost_usd=2.54, iteration=2)
    state.started_at = now - timedelta(hours=1, minutes=22)
    state.stop_reason = "the worker is blocked: needs the staging database password"
    history = [
        IterationRecord(number=1, started_at=now, ended_at=now, duration_s=1.0,
                        git_before=GitPoint(head=first), git_after=GitPoint(head=first)),
        IterationRecord(number=2, started_at=now, ended_at=now, duration_s=1.0,
                        git_before=GitPoint(head=first), git_after=GitPoint(head=last),
                        permission_denials=["Bash", "Bash"]),
    ]  # fmt: skip
    commits = commit_range_summary(project, first, last)
    text = notification_summary(project, state, history, now.timestamp(), commits)
    assert text.splitlines() == [
        "project: blocked after 2 iteration(s) in 1h22m, $2.54, 4 commit(s)",
        "why: the worker is blocked: needs the staging database password",
        "commit: parser: document tabs",
        "commit: names: NFC",
        "commit: names: NFD",
        "needs you: permission denied for Bash",
    ]


def test_summary_of_a_run_without_iterations(project: Path) -> None:
    now = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    state = make_state(project, 1, None, status="stopped", iteration=0, cost_usd=0.0)
    state.started_at = now
    assert notification_summary(project, state, [], now.timestamp(), []) == (
        "project: stopped after 0 iteration(s) in 0s, $0.00, 0 commit(s)"
    )
