"""Fault injection (issue 12, "Tests and figures"): the daemon killed before or after each
atomic file write of a run, then ``--resume``: workers launched stay within the cap, every
worker's cost is accounted for, state.json stays readable and the run ends."""

from __future__ import annotations

import json

import pytest

from tests.supervisor.run.driver import DaemonKilled, Turn
from unattended.contracts.exit_codes import ExitCode
from unattended.supervisor.records.fsio import sys_calls

CAP = 3
WRITES = 16  # the atomic writes (state, worker settings) of a 3-iteration run


def raw_log_costs(driver) -> float:
    """What the workers' result events say they cost, over every raw log of the run."""
    total = 0.0
    for raw in sorted(driver.paths.iterations.glob("[0-9][0-9][0-9][0-9].jsonl")):
        for line in raw.read_text().splitlines():
            event = json.loads(line)
            if event.get("type") == "result":
                total += event["total_cost_usd"]
    return round(total, 6)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("k", range(1, WRITES + 1))
def test_a_kill_at_any_write_keeps_the_caps_and_the_accounts(
    loop_driver, monkeypatch, k: int, when: str
) -> None:
    real_replace = sys_calls.replace
    seen = 0

    def replace_or_die(src, dst, **dir_fds) -> None:  # noqa: ANN001, ANN003
        nonlocal seen
        seen += 1
        if seen == k and when == "before":
            raise DaemonKilled
        real_replace(src, dst, **dir_fds)
        if seen == k:
            raise DaemonKilled

    turns = [Turn(progress=True, cost=0.1) for _ in range(CAP + 1)]
    first = loop_driver(turns, max_iterations=CAP)
    monkeypatch.setattr(sys_calls, "replace", replace_or_die)
    try:
        code = first.run()
    except DaemonKilled:
        code = None
    monkeypatch.setattr(sys_calls, "replace", real_replace)
    assert code is None, f"the run made only {seen} writes"
    if first.saved_state().status.terminal:  # killed after its last write: nothing to resume
        assert first.launched <= CAP and first.saved_state().cost_usd == raw_log_costs(first)
        return
    resumed = loop_driver(turns, resume=True, max_iterations=CAP)
    assert resumed.run() == ExitCode.CAPPED
    assert first.launched + resumed.launched <= CAP
    state = resumed.saved_state()  # readable
    assert state.iteration == CAP and state.status.value == "capped"
    assert state.cost_usd == raw_log_costs(resumed)
