"""``--hours`` holds while a worker runs (issue 12 item 9): at the deadline the worker is ended
as for ``stop --now`` and the run ends capped by hours; the worker learns the deadline."""

from __future__ import annotations

from tests.supervisor.run.driver import Turn
from unattended.contracts.exit_codes import ExitCode


def test_the_deadline_ends_a_running_worker_and_caps_the_run(loop_driver) -> None:
    drv = loop_driver([Turn(until_stopped=True), Turn()], hours=0.01)  # a 36 s run
    start = drv.clock.now
    assert drv.run() == ExitCode.CAPPED
    assert drv.launched == 1
    assert drv.workers[0].stop_reasons == ["deadline"]
    assert drv.clock.now - start < 36 + 2 * drv.loop.ticker.tick_s  # not the worker timeout
    state = drv.saved_state()
    assert state.stop_reason.startswith("hours cap: deadline")
    assert state.last_iteration.outcome.value == "no-progress"  # as after `stop --now`
    assert drv.messages("deadline") == ["deadline reached: ending the worker now"]


def test_the_worker_is_given_the_deadline_and_the_warning_time(loop_driver) -> None:
    drv = loop_driver([Turn(result_text="UNATTENDED_DONE")], deadline_warn_s=900)
    assert drv.run() == ExitCode.DONE
    env = drv.specs[0].env
    assert float(env["UNATTENDED_DEADLINE"]) == drv.state.deadline.timestamp()
    assert env["UNATTENDED_DEADLINE_WARN_S"] == "900"
