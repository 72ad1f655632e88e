"""The daemon applies the safety rules with real processes (issue 4, "Between iterations").

Each scenario scripts the fake claude, runs `unattended start --foreground` (the exit code is
the verdict) or a detached daemon, and reads state.json, run.log, events.jsonl and git. Short
settings come from unattended.toml (gutter_iterations and the backoffs are file settings).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import read_state
from tests.daemon.scenario import events, foreground, head, prompts, run_log, write_toml

NOTE = "Note from the supervisor"


def test_no_commit_loop_is_stuck_with_a_graded_diagnosis(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, gutter_iterations=3)
    start_head = head(project)
    fake_claude.script([["text"]])  # claims progress in prose, changes nothing, no tool calls
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["status"] == "stuck" and state["exit_code"] == 5
    assert state["iteration"] == 3
    assert "no progress in 3 iterations" in state["stop_reason"]
    assert state["gutter"]["no_progress"] == 3
    assert "3 of 3 iterations in a row without progress" in state["gutter"]["reason"]
    assert state["last_iteration"]["outcome"] == "no-progress"
    assert head(project) == start_head
    # Graded: the first workers get the plain prompt, the last one a diagnosis first.
    given = prompts(fake_claude)
    assert len(given) == 3
    assert NOTE not in given[0] and NOTE not in given[1]
    assert f"{NOTE}: the last 2 iterations changed nothing in git" in given[2]
    assert "no tool calls" in given[2] and "UNATTENDED_BLOCKED" in given[2]
    log = run_log(project)
    assert "iter 1 no-progress" in log and "exited 0 with no tool calls" in log
    assert "run ended stuck (exit 5)" in log


def test_real_progress_clears_the_gutter(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, gutter_iterations=3)
    fake_claude.script([["text"], ["text"], ["commit", "text"], ["text"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    state = read_state(project)
    # Two idle iterations, a commit (the count starts again), then three more idle ones.
    assert state["iteration"] == 6
    assert state["gutter"]["no_progress"] == 3
    given = prompts(fake_claude)
    assert NOTE in given[2]  # after two idle iterations
    assert NOTE not in given[3]  # the commit cleared it
    assert NOTE in given[5]
    assert "iter 3 progress" in run_log(project)


def _same_error(ids: list[str]) -> list[list[dict]]:
    """One 400 per worker: same words, different numbers and request ids."""
    return [
        [
            {
                "do": "api_error",
                "status": 400,
                "message": f"messages.{3 + 7 * i}.content.0: tool_use ids must be unique "
                f"(request {request_id})",
            }
        ]
        for i, request_id in enumerate(ids)
    ]


def _assert_same_failure_stuck(project: Path, proc, fake_claude) -> None:  # noqa: ANN001
    assert proc.returncode == 5, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["status"] == "stuck" and state["iteration"] == 3
    assert state["stop_reason"].startswith("the same failure 3 times in a row"), state
    assert "tool_use ids must be unique" in state["stop_reason"]
    assert state["gutter"]["same_failure"] == 3
    assert "The same error repeated 2 times" in prompts(fake_claude)[2]


def test_same_error_repeated_is_stuck(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, gutter_iterations=3)
    fake_claude.script(_same_error(["3fa9c01d", "0x77be0e12", "5e6f0c4d"]))
    _assert_same_failure_stuck(project, foreground(project, hermetic_env), fake_claude)


@pytest.mark.xfail(
    strict=True,
    reason="safety: failure_fingerprint keeps Anthropic request ids (req_011C...), so a "
    "repeated API error quoting its request id never counts as the same failure",
)
def test_same_error_with_request_ids_is_stuck(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, gutter_iterations=3)
    fake_claude.script(_same_error(["req_011CA1b2Xy", "req_011CQ9zzT4", "req_011CVk3mPq"]))
    _assert_same_failure_stuck(project, foreground(project, hermetic_env), fake_claude)


def test_crash_loop_backs_off_then_is_stuck(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, gutter_iterations=3, crash_backoff_s=0.6)
    fake_claude.script([[{"do": "exit", "code": 1, "stderr": "Error: boom at 0x7f3a"}]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["status"] == "stuck" and state["iteration"] == 3
    assert state["stop_reason"].startswith("crash loop: 3 workers in a row died")
    assert state["gutter"]["crashes"] == 3
    assert state["last_iteration"]["exit_code"] == 1
    assert state["last_iteration"]["error"] == "Error: boom at 0x7f3a"
    spawns = [e["epoch"] for e in events(project, "spawn")]
    assert len(spawns) == 3
    # Backoff doubles: at least 0.6 s, then 1.2 s between launches.
    assert spawns[1] - spawns[0] >= 0.6
    assert spawns[2] - spawns[1] >= 1.2
    log = run_log(project)
    assert "relaunching in" in log and "crash loop" in log
