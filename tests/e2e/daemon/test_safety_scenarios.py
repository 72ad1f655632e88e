"""The daemon applies the safety rules with real processes (issue 4, "Between iterations").

Each scenario scripts the fake claude, runs `unattended start --foreground` (the exit code is
the verdict) or a detached daemon, and reads state.json, run.log, events.jsonl and git. Short
settings come from unattended.toml (gutter_iterations and the backoffs are file settings).
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path

from tests.conftest import read_state, run_cli, wait_for, wait_terminal
from tests.e2e.daemon.scenario import (
    detached,
    events,
    foreground,
    head,
    prompts,
    run_log,
    write_toml,
)
from unattended.contracts.paths import RunPaths

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


def test_same_error_with_request_ids_is_stuck(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    """Real API errors quote their request id (req_011C...): still the same failure."""
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


# ----- what the worker says does not decide -------------------------------------------------


def test_blocker_none_and_markers_in_tool_output_are_not_verdicts(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit", "blocker_none"], ["commit", "markers_in_tool"]])
    proc = foreground(project, hermetic_env, "--max-iterations", "2")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["status"] == "capped" and state["iteration"] == 2
    assert state["stop_reason"].startswith("iteration cap")
    log = run_log(project)
    assert "iter 1 progress" in log and "iter 2 progress" in log
    assert "blocked" not in log.replace("UNATTENDED_BLOCKED", "")


def test_ending_with_a_question_is_no_progress_and_the_next_worker_is_told(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["question"], ["commit", "done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "iter 1 no-progress" in run_log(project)
    assert "asking a question" in run_log(project)
    given = prompts(fake_claude)
    assert "nobody is there to answer" not in given[0]
    assert "nobody is there to answer" in given[1]


def test_repeated_permission_denials_block_the_run(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, gutter_iterations=3)
    fake_claude.script([[{"do": "permission_denied", "tool": "Bash"}, "text"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["status"] == "blocked" and state["iteration"] == 3
    assert state["stop_reason"].startswith("the worker needs permission to run Bash")
    assert state["gutter"]["denials"] == 3
    assert "(denied: Bash)" in run_log(project)
    assert "These tools were denied and will stay denied: Bash" in prompts(fake_claude)[2]


# ----- API trouble ----------------------------------------------------------------------------


def _wait_backing_off(project: Path, timeout: float = 30) -> dict:
    """The state once the daemon waits with a resume_at (not the short pause after a worker)."""
    seen: dict = {}

    def check() -> bool:
        nonlocal seen
        try:
            seen = read_state(project)
        except (OSError, ValueError):
            return False
        return seen["status"] == "waiting" and seen["resume_at"] is not None

    assert wait_for(check, timeout, 0.02), f"never waited: {seen}\n{run_log(project)}"
    return seen


def test_rate_limit_waits_then_continues(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, api_backoff_s=1.5, gutter_iterations=2)
    fake_claude.script([[{"do": "api_error", "status": 429}], ["commit", "done"]])
    detached(project, hermetic_env)
    waiting = _wait_backing_off(project)
    assert waiting["last_iteration"]["outcome"] == "api-error"
    assert waiting["gutter"]["no_progress"] == 0  # service trouble is not the work's failure
    state = wait_terminal(project)
    assert state["status"] == "done" and state["iteration"] == 2
    spawns = [e["epoch"] for e in events(project, "spawn")]
    assert spawns[1] - spawns[0] >= 1.5
    assert "API rate limit" in run_log(project) and "backing off" in run_log(project)


def _reset_reported(project: Path) -> float:
    """The resetsAt the worker's rate_limit_event reported (the fake computes it at run time)."""
    for line in (RunPaths(project).iterations / "0001.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "rate_limit_event":
            return float(event["rate_limit_info"]["resetsAt"])
    raise AssertionError("no rate_limit_event in iteration 1")


def test_usage_limit_waits_for_the_reset_then_continues(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, limit_margin_s=1)
    fake_claude.script([[{"do": "usage_limit", "resets_in": 4}], ["commit", "done"]])
    detached(project, hermetic_env)
    waiting = _wait_backing_off(project)
    resets_at = _reset_reported(project)
    resume_at = datetime.fromisoformat(waiting["resume_at"].replace("Z", "+00:00"))
    assert abs(resume_at.timestamp() - (resets_at + 1)) <= 1
    assert waiting["last_iteration"]["outcome"] == "api-error"
    status = run_cli(["status"], hermetic_env, cwd=project)
    assert status.returncode == 0 and "waiting" in status.stdout, status.stdout
    assert "resume at" in status.stdout and "(in " in status.stdout  # the countdown
    state = wait_terminal(project)
    assert state["status"] == "done" and state["iteration"] == 2
    spawns = [e["epoch"] for e in events(project, "spawn")]
    assert spawns[1] >= resets_at + 1 - 0.5
    assert "usage limit (five_hour): waiting until" in run_log(project)


def test_usage_limit_past_the_deadline_is_capped(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([[{"do": "usage_limit", "kind": "weekly", "resets_in": 7200}]])
    proc = foreground(project, hermetic_env, "--hours", "0.5")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["status"] == "capped" and state["iteration"] == 1
    assert "usage limit (seven_day)" in state["stop_reason"]
    assert "after the deadline" in state["stop_reason"]


def test_on_limit_stop_ends_capped(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([[{"do": "usage_limit", "resets_in": 600}]])
    proc = foreground(project, hermetic_env, "--on-limit", "stop")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["status"] == "capped" and state["iteration"] == 1
    assert state["stop_reason"].startswith("usage limit")
    assert "--on-limit is stop" in state["stop_reason"]


def test_auth_error_fails_at_once(project: Path, hermetic_env: dict[str, str], fake_claude) -> None:
    fake_claude.script([["auth_error"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 7, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["status"] == "failed" and state["exit_code"] == 7
    assert state["iteration"] == 1
    assert state["stop_reason"].startswith("authentication failed: Invalid API key")
    assert len(fake_claude.calls()) == 1


def test_claude_binary_deleted_mid_run_fails(
    project: Path, hermetic_env: dict[str, str], fake_claude, tmp_path: Path
) -> None:
    copy = tmp_path / "bin2" / "claude"
    copy.parent.mkdir()
    shutil.copy2(fake_claude.bin, copy)
    fake_claude.script([[{"do": "run", "cmd": f"rm -f {copy}"}, "commit"]])
    t0 = time.monotonic()
    proc = foreground(project, hermetic_env, "--claude-bin", str(copy))
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert time.monotonic() - t0 < 30
    state = read_state(project)
    assert state["status"] == "failed" and state["iteration"] == 2
    assert state["stop_reason"].startswith("cannot run the claude binary")
    assert str(copy) in state["stop_reason"]
    assert len(fake_claude.calls()) == 1
    assert "could not start the worker" in run_log(project)


def test_storm_breaker_caps_launches_per_minute(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, max_launches_per_minute=3, crash_backoff_s=0, gutter_iterations=10)
    fake_claude.script([[{"do": "exit", "code": 1}]])
    detached(project, hermetic_env)
    assert wait_for(lambda: "storm breaker" in run_log(project), 20), run_log(project)
    time.sleep(1.5)  # long enough for a storm of fast-failing launches
    spawns = [e["epoch"] for e in events(project, "spawn")]
    assert len(spawns) == 3, spawns
    state = read_state(project)
    assert state["status"] == "waiting" and state["worker_pid"] is None
    resume_at = datetime.fromisoformat(state["resume_at"].replace("Z", "+00:00")).timestamp()
    assert abs(resume_at - (spawns[0] + 60)) <= 1.5
    assert state["iteration"] == 3
    stop = run_cli(["stop", "--now", "--wait", "--timeout", "20"], hermetic_env, cwd=project)
    assert stop.returncode == 0, stop.stderr
    assert read_state(project)["status"] == "stopped"


def test_prompt_too_long_starts_a_fresh_session_not_a_failure(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit"], ["prompt_too_long"], ["commit", "done"]])
    # --model: the fake reports the model it was given, so the loop's model check passes.
    proc = foreground(project, hermetic_env, "--model", "sonnet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    argvs = [call["argv"] for call in fake_claude.calls()]
    assert "--resume" in argvs[1]  # it continued the session that made progress...
    assert "--resume" not in argvs[2]  # ...and after the overflow starts afresh
    log = run_log(project)
    assert "the next worker starts a fresh session" in log
    assert read_state(project)["gutter"]["same_failure"] == 0


def test_a_worker_ended_by_the_timeout_is_not_a_crash(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    # A crash would wait 60 s before the next launch; a timeout must not.
    write_toml(project, gutter_iterations=3, crash_backoff_s=60)
    fake_claude.script([["hang"]])
    proc = foreground(project, hermetic_env, "--worker-timeout", "1")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["iteration"] == 3 and state["gutter"]["crashes"] == 0
    assert "crash loop" not in state["stop_reason"]
    assert state["last_iteration"]["outcome"] == "timeout"
    assert "relaunching in" not in run_log(project)


def test_a_session_that_made_progress_is_resumed_without_model_option(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit"], ["commit", "done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--resume" in fake_claude.calls()[1]["argv"]
