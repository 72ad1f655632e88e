"""Each ``safety`` verdict the loop acts on, driven in-process: a fake clock, scripted workers
and scripted git evidence (``driver.py``). No daemon and no subprocess."""

from __future__ import annotations

from tests.supervisor.run.driver import Turn, init_event, result_event, usage_limit_events
from unattended.contracts.exit_codes import ExitCode


def test_done_marker_ends_the_run_done(loop_driver) -> None:
    drv = loop_driver([Turn(progress=True), Turn(result_text="All good.\nUNATTENDED_DONE")])
    assert drv.run() == ExitCode.DONE
    assert drv.launched == 2
    state = drv.saved_state()
    assert (state.status.value, state.iteration, state.cost_usd) == ("done", 2, 0.02)
    assert drv.notifications[-1][0] == "done"


def test_done_when_command_passing_ends_the_run_done(loop_driver) -> None:
    drv = loop_driver(
        [Turn(progress=True, done_when=False), Turn(progress=True, done_when=True)],
        done_when="make check",
    )
    assert drv.run() == ExitCode.DONE
    assert drv.launched == 2


def test_blocked_marker_ends_the_run_blocked(loop_driver) -> None:
    drv = loop_driver([Turn(result_text="UNATTENDED_BLOCKED: I need the API key")])
    assert drv.run() == ExitCode.BLOCKED
    assert "I need the API key" in drv.saved_state().stop_reason


def test_no_progress_streak_ends_the_run_stuck(loop_driver) -> None:
    drv = loop_driver([Turn(), Turn(), Turn()], gutter_iterations=3)
    assert drv.run() == ExitCode.STUCK
    state = drv.saved_state()
    assert "no progress in 3 iterations" in state.stop_reason
    assert state.gutter.no_progress == 3


def test_repeated_denials_end_the_run_blocked(loop_driver) -> None:
    denied = [init_event(), result_event("I could not run it.", denials=["Bash"])]
    drv = loop_driver([Turn(events=denied) for _ in range(3)], gutter_iterations=3)
    assert drv.run() == ExitCode.BLOCKED
    assert "needs permission to run Bash" in drv.saved_state().stop_reason


def test_crash_loop_waits_with_backoff_then_ends_stuck(loop_driver) -> None:
    crash = Turn(events=[], exit_code=1, duration_s=1.0, stderr="Segmentation fault")
    drv = loop_driver([crash, crash, crash], gutter_iterations=3, crash_backoff_s=5.0)
    assert drv.run() == ExitCode.STUCK
    assert "crash loop: 3 workers in a row" in drv.saved_state().stop_reason
    waits = drv.messages("wait")
    assert len(waits) == 2 and all("relaunching in" in w for w in waits)
    assert drv.clock.slept >= 5.0 + 10.0  # exponential: 5 s, then 10 s


def test_iteration_cap(loop_driver) -> None:
    drv = loop_driver([Turn(progress=True)] * 2, max_iterations=2)
    assert drv.run() == ExitCode.CAPPED
    assert drv.launched == 2
    assert drv.saved_state().stop_reason == "iteration cap: 2 of 2 iterations used"


def test_hours_cap_between_workers(loop_driver) -> None:
    drv = loop_driver([Turn(progress=True, duration_s=40.0)] * 2, hours=0.02)  # 72 s
    assert drv.run() == ExitCode.CAPPED
    assert drv.launched == 2
    assert drv.saved_state().stop_reason.startswith("hours cap: deadline")


def test_token_cap(loop_driver) -> None:
    drv = loop_driver([Turn(progress=True)] * 3, max_tokens=2_000)  # 1,200 tokens a worker
    assert drv.run() == ExitCode.CAPPED
    assert drv.launched == 1  # the runway: the next one needs ~1,200, 800 are left
    assert drv.saved_state().stop_reason.startswith("token cap: next iteration needs ~1,200")


def test_cost_cap_at_95_percent(loop_driver) -> None:
    drv = loop_driver([Turn(progress=True, cost=0.96)], max_cost_usd=1.0)
    assert drv.run() == ExitCode.CAPPED
    assert drv.saved_state().stop_reason.startswith("cost cap: $0.96 of $1.00 spent")


def test_stop_sentinel_ends_after_the_current_iteration(loop_driver) -> None:
    drv = loop_driver([Turn(progress=True, on_start=lambda d: d.paths.stop.touch()), Turn()])
    assert drv.run() == ExitCode.STOPPED
    assert drv.launched == 1
    assert drv.workers[0].stop_reasons == []  # the worker was allowed to finish


def test_signal_ends_the_worker_now_and_the_run_stopped(loop_driver) -> None:
    def signal_after(d, ran: float) -> None:
        if ran >= 3.0:
            d.flags.stop_now, d.flags.received = True, ["SIGTERM"]

    drv = loop_driver([Turn(until_stopped=True, on_tick=signal_after)])
    assert drv.run() == ExitCode.STOPPED
    assert drv.workers[0].stop_reasons == ["stop"]
    assert drv.messages("signal") == ["received SIGTERM: ending the worker now"]


def test_missing_claude_binary_fails_the_run(loop_driver) -> None:
    drv = loop_driver([Turn(spawn_error="claude: no such file (is the claude binary installed?)")])
    assert drv.run() == ExitCode.FAILED
    assert drv.saved_state().stop_reason.startswith("cannot run the claude binary")


def test_no_prompt_fails_the_run(loop_driver) -> None:
    drv = loop_driver([Turn()])
    (drv.project / "PROMPT.md").unlink()
    assert drv.run() == ExitCode.FAILED
    assert drv.launched == 0
    assert drv.saved_state().stop_reason.startswith("no prompt for the worker")


def test_api_trouble_waits_with_backoff_then_goes_on(loop_driver) -> None:
    overloaded = [init_event(), result_event("API Error: 529 Overloaded", is_error=True,
                                             api_error_status=529, cost=0.0)]  # fmt: skip
    drv = loop_driver(
        [Turn(events=overloaded, exit_code=1), Turn(result_text="UNATTENDED_DONE")],
        api_backoff_s=30.0,
    )
    assert drv.run() == ExitCode.DONE
    (wait,) = drv.messages("wait")
    assert "API overloaded" in wait and "attempt 1" in wait
    assert drv.clock.slept >= 30.0 * 0.5  # backoff with jitter, never instant


def test_usage_limit_waits_until_the_reset_plus_margin(loop_driver) -> None:
    drv = loop_driver([Turn(exit_code=1), Turn(result_text="UNATTENDED_DONE")])
    reset = drv.clock.now + 600.0
    drv.turns[0].events = usage_limit_events(reset)
    assert drv.run() == ExitCode.DONE
    (wait,) = drv.messages("wait")
    assert "usage limit (five_hour)" in wait and "120s margin" in wait
    assert drv.clock.now >= reset + 120.0  # the second worker started after reset + margin
    assert any(status == "waiting" for status, _ in drv.notifications)
    assert drv.saved_state().resume_at is None  # cleared once the wait is over


def test_usage_limit_with_on_limit_stop_caps_the_run(loop_driver) -> None:
    drv = loop_driver([Turn(exit_code=1)], on_limit="stop")
    drv.turns[0].events = usage_limit_events(drv.clock.now + 600.0)
    assert drv.run() == ExitCode.CAPPED
    assert "--on-limit is stop" in drv.saved_state().stop_reason


def test_a_wait_past_the_deadline_caps_the_run(loop_driver) -> None:
    drv = loop_driver([Turn(exit_code=1)], hours=0.05)  # the reset is after the deadline
    drv.turns[0].events = usage_limit_events(drv.clock.now + 3600.0)
    assert drv.run() == ExitCode.CAPPED
    assert "after the deadline" in drv.saved_state().stop_reason


def test_the_same_failure_repeated_ends_the_run_stuck(loop_driver) -> None:
    failing = Turn(events=[init_event()], exit_code=1, duration_s=60.0,
                   stderr="ModuleNotFoundError: No module named 'app'")  # fmt: skip
    drv = loop_driver([failing] * 3, gutter_iterations=3)
    assert drv.run() == ExitCode.STUCK
    assert "the same failure 3 times in a row" in drv.saved_state().stop_reason
    assert "No module named 'app'" in drv.saved_state().stop_reason


def test_quota_pacing_waits_for_the_window_reset(loop_driver) -> None:
    reset = 1_900_000_000.0 + 1_800.0
    busy = [init_event(), {"type": "rate_limit_event", "rate_limit_info": {
        "status": "allowed_warning", "resetsAt": reset, "rateLimitType": "five_hour",
        "utilization": 0.95}}, result_event()]  # fmt: skip
    drv = loop_driver(
        [Turn(events=busy, progress=True), Turn(result_text="UNATTENDED_DONE")],
        max_quota_pct=90.0,
    )
    assert drv.run() == ExitCode.DONE
    (wait,) = drv.messages("wait")
    assert wait.startswith("waiting until") and "quota pacing: five_hour window at 95%" in wait
    assert drv.spawn_times[1] >= reset
