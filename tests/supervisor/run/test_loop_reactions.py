"""The loop's reactions between verdicts, driven in-process: the graded-gutter note, model
escalation, handoff notes carried to the next prompt, the worker-slot wait, budget alerts and
the storm breaker."""

from __future__ import annotations

import pytest

from tests.supervisor.run.driver import Turn
from unattended.contracts.exit_codes import ExitCode


def test_no_progress_puts_a_diagnosis_in_the_next_prompt(loop_driver) -> None:
    drv = loop_driver([Turn(), Turn(), Turn(result_text="UNATTENDED_DONE")], gutter_iterations=5)
    assert drv.run() == ExitCode.DONE
    assert "Note from the supervisor" not in drv.prompt(2)
    assert "the last 2 iterations changed nothing in git" in drv.prompt(3)


def test_escalation_after_no_progress_switches_the_model(loop_driver) -> None:
    drv = loop_driver(
        [Turn(), Turn(), Turn(result_text="UNATTENDED_DONE")],
        escalate_model="claude-opus-4-1",
        escalate_after=2,
    )
    assert drv.run() == ExitCode.DONE
    assert "--model" not in drv.specs[1].argv
    argv = drv.specs[2].argv
    assert argv[argv.index("--model") + 1] == "claude-opus-4-1"
    (line,) = drv.messages("escalate")
    assert "to claude-opus-4-1" in line
    assert drv.saved_state().model == "claude-opus-4-1"


def test_handoff_notes_reach_the_next_prompt_once(loop_driver) -> None:
    drv = loop_driver(
        [
            Turn(progress=True, handoff="Next: wire the parser into main()."),
            Turn(progress=True),
            Turn(result_text="UNATTENDED_DONE"),
        ],
        session_policy="fresh",
    )
    assert drv.run() == ExitCode.DONE
    assert "Handoff notes from the previous worker" not in drv.prompt(1)
    assert "Next: wire the parser into main()." in drv.prompt(2)
    assert "Handoff notes" not in drv.prompt(3)
    assert (drv.paths.iterations / "0001.handoff.md").is_file()
    assert not drv.paths.handoff.exists()


def test_a_busy_slot_pool_makes_the_loop_wait(loop_driver) -> None:
    drv = loop_driver([Turn(result_text="UNATTENDED_DONE")], busy_slots=3)
    assert drv.run() == ExitCode.DONE
    assert drv.messages("slot_wait") == ["waiting for a worker slot (max_parallel_workers)"]
    assert drv.slots.tries == 4 and drv.clock.slept >= 3 * drv.loop.ticker.tick_s


@pytest.mark.parametrize(
    ("cost", "level", "notified"), [(8.1, "warn", False), (9.1, "critical", True)]
)
def test_budget_alerts(loop_driver, cost: float, level: str, notified: bool) -> None:
    drv = loop_driver([Turn(progress=True, cost=cost)], max_cost_usd=10.0)
    assert drv.run() == ExitCode.CAPPED  # the runway: the next one would need ~cost again
    message = f"budget {level}: cost at {cost * 10:.0f}% (${cost:.2f} of $10.00)"
    assert drv.messages("budget_alert") == [message]
    assert (("critical", message) in drv.notifications) is notified
    assert drv.saved_state().stop_reason.startswith(f"cost cap: next iteration needs ~${cost}")


def test_storm_breaker_spaces_fast_launches(loop_driver) -> None:
    fast = Turn(progress=True, duration_s=1.0)
    drv = loop_driver([fast, fast, fast, Turn(result_text="UNATTENDED_DONE")],
                      max_launches_per_minute=2)  # fmt: skip
    assert drv.run() == ExitCode.DONE
    storms = [m for m in drv.messages("wait") if "storm breaker" in m]
    assert storms and drv.clock.slept >= 50.0


def test_the_loop_starts_no_process(loop_driver, monkeypatch) -> None:
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    drv = loop_driver([Turn(progress=True), Turn(result_text="UNATTENDED_DONE")])
    assert drv.run() == ExitCode.DONE
