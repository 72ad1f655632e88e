"""Caps and streaks survive a daemon kill and ``--resume`` (issue 12, items 1-3), driven
in-process: ``DaemonKilled`` raised from a hook leaves the files a ``kill -9`` leaves."""

from __future__ import annotations

import json

import pytest

from tests.supervisor.run.driver import (
    DaemonKilled,
    Turn,
    init_event,
    result_event,
    usage_limit_events,
)
from unattended.contracts.exit_codes import ExitCode
from unattended.contracts.telemetry import TelemetryLine


def kill_after(seconds: float):
    def hook(driver, ran: float) -> None:
        if ran >= seconds:
            raise DaemonKilled

    return hook


def killed(driver) -> None:
    with pytest.raises(DaemonKilled):
        driver.run()


def telemetry(driver) -> list[TelemetryLine]:
    text = driver.paths.telemetry.read_text()
    return [TelemetryLine.model_validate_json(line) for line in text.splitlines()]


def test_a_kill_in_the_last_allowed_iteration_launches_nothing_more(loop_driver) -> None:
    killed(loop_driver([Turn(duration_s=60.0, on_tick=kill_after(5.0))], max_iterations=1))
    resumed = loop_driver([Turn()], resume=True, max_iterations=1)
    assert resumed.run() == ExitCode.CAPPED
    assert resumed.launched == 0
    assert resumed.saved_state().stop_reason == "iteration cap: 1 of 1 iterations used"


def test_the_no_progress_streak_goes_on_counting_after_a_resume(loop_driver) -> None:
    first = loop_driver([Turn(), Turn(), Turn(progress=True)], gutter_iterations=4)
    first.turns[2].on_tick = kill_after(1.0)
    killed(first)
    assert first.saved_state().gutter.no_progress == 2
    resumed = loop_driver([Turn(), Turn(), Turn(), Turn()], resume=True, gutter_iterations=4)
    assert resumed.run() == ExitCode.STUCK
    # iterations 1, 2 (before the kill), 3 (killed: no progress in git), 4: the fourth in a row
    assert resumed.launched == 1
    assert "no progress in 4 iterations in a row" in resumed.saved_state().stop_reason


def test_the_killed_iteration_is_priced_from_its_raw_log_and_recorded_crashed(loop_driver):
    def result_then_kill(driver, ran: float) -> None:
        raw = driver.workers[-1].spec.stdout_path
        with raw.open("a") as out:
            out.write(json.dumps(init_event()) + "\n")
            out.write(json.dumps(result_event("half done", cost=0.5)) + "\n")
        raise DaemonKilled

    first = loop_driver([Turn(progress=True), Turn(on_tick=result_then_kill)], max_cost_usd=1.0)
    killed(first)
    assert first.saved_state().cost_usd == 0.01  # the killed worker's cost was never counted
    resumed = loop_driver([Turn(), Turn()], resume=True, max_cost_usd=1.0)
    assert resumed.run() == ExitCode.CAPPED
    assert resumed.launched == 0  # $0.51 spent, the next one needs ~$0.50: over the cap
    state = resumed.saved_state()
    assert state.cost_usd == 0.51
    assert state.stop_reason.startswith("cost cap: next iteration needs ~$0.50")
    crashed = telemetry(resumed)[-1]
    assert (crashed.iteration, crashed.outcome.value) == (2, "crashed")
    assert crashed.total_cost_usd == 0.5
    assert any("crashed" in m for m in resumed.messages("iteration"))


def test_the_killed_iteration_without_a_result_is_priced_from_its_transcript(loop_driver):
    def init_then_kill(driver, ran: float) -> None:
        raw = driver.workers[-1].spec.stdout_path
        raw.write_text(json.dumps(init_event(session_id="sess-killed")) + "\n")
        folder = driver.tmp_path / "home" / ".claude" / "projects" / "any-project"
        folder.mkdir(parents=True)
        usage = {"input_tokens": 100_000, "output_tokens": 10_000}
        message = {"id": "msg_1", "model": "claude-sonnet-4-5", "usage": usage,
                   "content": [{"type": "text", "text": "working"}]}  # fmt: skip
        line = {"type": "assistant", "sessionId": "sess-killed", "message": message}
        (folder / "sess-killed.jsonl").write_text(json.dumps(line) + "\n")
        raise DaemonKilled

    killed(loop_driver([Turn(on_tick=init_then_kill)]))
    resumed = loop_driver([Turn(result_text="UNATTENDED_DONE")], resume=True)
    assert resumed.run() == ExitCode.DONE
    crashed = telemetry(resumed)[0]
    assert (crashed.iteration, crashed.outcome.value) == (1, "crashed")
    assert crashed.usage_source == "transcript"
    assert crashed.input_tokens == 100_000 and crashed.total_cost_usd > 0.3
    assert resumed.saved_state().cost_usd == round(crashed.total_cost_usd + 0.01, 6)


def test_repeated_daemon_deaths_end_as_a_crash_loop(loop_driver) -> None:
    for _ in range(3):
        killed(loop_driver([Turn(on_tick=kill_after(1.0))], resume=True, gutter_iterations=3))
    resumed = loop_driver([Turn()], resume=True, gutter_iterations=3)
    assert resumed.run() == ExitCode.STUCK
    assert resumed.launched == 0
    assert "crash loop: 3 workers in a row" in resumed.saved_state().stop_reason


def test_a_pending_usage_limit_wait_is_honoured_on_resume(loop_driver) -> None:
    first = loop_driver([Turn(exit_code=1)], limit_margin_s=120.0)
    reset = first.clock.now + 3_600.0
    first.turns[0].events = usage_limit_events(reset)

    def kill_while_waiting(slept: float) -> None:
        if slept >= 60.0:
            raise DaemonKilled

    first.clock.on_sleep = kill_while_waiting
    killed(first)
    first.clock.on_sleep = None
    assert first.saved_state().resume_at.timestamp() == reset + 120.0
    resumed = loop_driver([Turn(result_text="UNATTENDED_DONE")], resume=True)
    assert resumed.run() == ExitCode.DONE
    assert resumed.spawn_times[0] >= reset + 120.0
    assert any("resuming the wait" in m for m in resumed.messages("wait"))
