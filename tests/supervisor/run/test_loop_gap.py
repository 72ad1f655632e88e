"""The work between a worker's exit and the next worker's spawn (issue 16): every state write
there is one the crash-only rules need, and no more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.supervisor.run.driver import DaemonKilled, FakeWorker, Turn
from unattended.contracts.exit_codes import ExitCode
from unattended.contracts.status import RunStatus
from unattended.contracts.telemetry import TelemetryLine
from unattended.supervisor.run import recorder

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_the_gap_writes_state_twice_the_record_then_the_launch(loop_driver, monkeypatch):
    # A worker with a process tree, as a real one: its exit changes the tree state.json lists.
    monkeypatch.setattr(
        FakeWorker, "seen_identities", lambda w: [] if w.finished else [(w.pid, 1.0)]
    )
    drv = loop_driver([Turn(), Turn()], max_iterations=2)
    seen: list[tuple] = []
    real_write, real_end, real_init = recorder.write_state, FakeWorker._end, FakeWorker.__init__
    real_point = drv.git.point

    def write(paths, state) -> None:  # noqa: ANN001
        recorded = state.last_iteration.number if state.last_iteration else 0
        seen.append((state.status, state.worker_pid, len(state.descendants), state.iteration,
                     recorded))  # fmt: skip
        real_write(paths, state)

    def end(worker, *args) -> None:  # noqa: ANN001, ANN002
        real_end(worker, *args)
        seen.append("exit")

    def spawned(worker, *args) -> None:  # noqa: ANN001, ANN002
        real_init(worker, *args)
        seen.append("spawn")

    def point(number, phase, warn):  # noqa: ANN001, ANN202
        seen.append(phase)
        return real_point(number, phase, warn)

    monkeypatch.setattr(recorder, "write_state", write)
    monkeypatch.setattr(FakeWorker, "_end", end)
    monkeypatch.setattr(FakeWorker, "__init__", spawned)
    drv.git.point = point
    assert drv.run() == ExitCode.CAPPED
    exit_at = seen.index("exit")
    gap = seen[exit_at + 1 : seen.index("spawn", exit_at)]
    waiting = RunStatus.WAITING
    assert gap == [
        "after",  # git evidence first: the worker's exit goes on disk with its record
        (waiting, None, 0, 1, 1),  # iteration 1 recorded (before its telemetry line)
        "before",
        (waiting, None, 0, 2, 1),  # iteration 2 counted before it is launched
    ]


def test_a_kill_during_the_git_evidence_leaves_the_iteration_to_the_resume(loop_driver):
    first = loop_driver([Turn(progress=True, cost=0.2), Turn()], max_iterations=2)
    real_point = first.git.point

    def point(number, phase, warn):  # noqa: ANN001, ANN202
        if phase == "after":
            raise DaemonKilled  # the worker has exited; its iteration is not recorded yet
        return real_point(number, phase, warn)

    first.git.point = point
    with pytest.raises(DaemonKilled):
        first.run()
    on_disk = first.saved_state()
    assert on_disk.iteration == 1 and on_disk.last_iteration is None and on_disk.cost_usd == 0
    raw = first.workers[0].spec.stdout_path.read_text().splitlines()
    assert [json.loads(line)["type"] for line in raw] == ["system", "result"]
    resumed = loop_driver([Turn(), Turn()], resume=True, max_iterations=2)
    assert resumed.run() == ExitCode.CAPPED
    assert resumed.launched == 1  # iteration 2 only: the cap counts the killed one
    state = resumed.saved_state()
    assert state.cost_usd == 0.21  # the killed iteration priced from its raw log's result
    text = resumed.paths.telemetry.read_text()
    first_line = TelemetryLine.model_validate_json(text.splitlines()[0])
    assert (first_line.iteration, first_line.outcome.value) == (1, "crashed")


def test_a_process_ending_is_no_reason_to_write_state_a_new_one_is(loop_driver) -> None:
    rec = loop_driver([Turn()]).loop.recorder
    alive = [(40_001, 1.0), (40_002, 2.0)]
    rec.seen_processes = lambda: list(alive)
    rec.write()
    assert not rec.tree_changed()
    alive.pop()  # a tool (or the worker) ended: a kill -9 now leaves nothing unlisted
    assert not rec.tree_changed()
    alive.append((40_003, 3.0))  # a new one must be on disk within a tick
    assert rec.tree_changed()
    rec.write()
    assert [(d.pid, d.create_time) for d in rec.ctx.state.descendants] == alive


FIRST_GAP = """
import json, sys
from pathlib import Path
from tests.supervisor.run.driver import FakeClock, FakeWorker, LoopDriver, Turn
from unattended.supervisor.records.fsio import sys_calls
import unattended.contracts.stream  # a real worker's stream is parsed while it runs

clock = FakeClock()
sys_calls.time, sys_calls.monotonic = clock.time, clock.monotonic
loaded = {}
real_end, real_init = FakeWorker._end, FakeWorker.__init__

def end(worker, *args):
    real_end(worker, *args)
    loaded.setdefault("exit", set(sys.modules))

def spawned(worker, *args):
    if "exit" in loaded:
        loaded.setdefault("spawn", set(sys.modules))
    real_init(worker, *args)

FakeWorker._end, FakeWorker.__init__ = end, spawned
drv = LoopDriver(Path(sys.argv[1]), [Turn(), Turn()], clock, {"max_iterations": 2})
drv.run()
print(json.dumps(sorted(loaded["spawn"] - loaded["exit"])))
"""


def test_the_first_gap_imports_nothing(tmp_path: Path, private_state_home: Path) -> None:
    # Every daemon's first gap would pay for them (a herd of daemons starts together). A fresh
    # interpreter: this one has imported everything already.
    done = subprocess.run(
        [sys.executable, "-c", FIRST_GAP, str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == []
