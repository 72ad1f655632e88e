"""The work between a worker's exit and the next worker's spawn (issue 16): every state write
there is one the crash-only rules need, and no more."""

from __future__ import annotations

from tests.supervisor.run.driver import FakeWorker, Turn
from unattended.contracts.exit_codes import ExitCode
from unattended.contracts.status import RunStatus
from unattended.supervisor.run import recorder


def test_a_worker_exit_is_one_state_write_before_the_git_evidence(loop_driver, monkeypatch):
    # A worker with a process tree, as a real one: its exit changes the tree state.json lists.
    monkeypatch.setattr(
        FakeWorker, "seen_identities", lambda w: [] if w.finished else [(w.pid, 1.0)]
    )
    drv = loop_driver([Turn(), Turn()], max_iterations=2)
    seen: list[tuple] = []
    real_write, real_end, real_point = recorder.write_state, FakeWorker._end, drv.git.point

    def write(paths, state) -> None:  # noqa: ANN001
        seen.append(("write", state.status, state.worker_pid, len(state.descendants)))
        real_write(paths, state)

    def end(worker, *args) -> None:  # noqa: ANN001, ANN002
        real_end(worker, *args)
        seen.append(("exit",))

    def point(number, phase, warn):  # noqa: ANN001, ANN202
        seen.append((phase,))
        return real_point(number, phase, warn)

    monkeypatch.setattr(recorder, "write_state", write)
    monkeypatch.setattr(FakeWorker, "_end", end)
    drv.git.point = point
    assert drv.run() == ExitCode.CAPPED
    exit_at = seen.index(("exit",))
    after_at = seen.index(("after",), exit_at)
    # The exit on disk (waiting, no worker, no processes) before git runs: once, not twice.
    assert seen[exit_at + 1 : after_at] == [("write", RunStatus.WAITING, None, 0)]
