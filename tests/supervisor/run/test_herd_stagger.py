"""The start stagger guards against a herd (a run's first worker, a wake-up after a wait),
never an ordinary iteration: ten busy daemons must not queue behind each other."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from unattended.safety.verdict import Verdict, VerdictKind
from unattended.supervisor.records.fsio import sys_calls
from unattended.supervisor.run.slots import WorkerSlots
from unattended.supervisor.run.ticker import Ticker


class _Quiet:
    """A recorder and a service notifier that record nothing."""

    watchdog_interval_s = None

    def __getattr__(self, name: str):  # noqa: ANN204
        return lambda *args, **fields: None


class Loop:
    """The loop's worker-start gate (``Ticker.await_worker_slot``), with a real slot pool."""

    def __init__(self, state_dir: Path, stagger_s: float) -> None:
        self.slots = WorkerSlots(None, state_dir)
        ctx = SimpleNamespace(settings=SimpleNamespace(start_stagger_s=stagger_s))
        self.ticker = Ticker(ctx, SimpleNamespace(), _Quiet(), sys_calls, _Quiet())  # type: ignore[arg-type]
        self.ticker.pause = lambda seconds: True  # a stop arrived: never really wait in a test
        self.ticker.should_stop_waiting = lambda: True
        self.asked: list[float] = []
        real = self.slots.stagger_delay

        def spy(now: float, min_gap_s: float = 3.0) -> float:
            self.asked.append(min_gap_s)
            return real(now, min_gap_s)

        self.slots.stagger_delay = spy  # type: ignore[method-assign]

    def _await_worker_slot(self) -> bool:
        return self.ticker.await_worker_slot(self.slots)

    def _wait(self, verdict: Verdict) -> None:
        self.ticker.wait(verdict)


def test_only_herd_starts_take_the_stagger(private_state_home: Path) -> None:
    loop = Loop(private_state_home, stagger_s=3.0)
    assert loop._await_worker_slot()  # the run's first worker: staggered, nothing to wait for
    assert loop.asked == [3.0]
    loop.slots.release()
    assert loop._await_worker_slot()  # an ordinary iteration: no reservation, no wait
    assert loop.asked == [3.0]
    loop.slots.release()
    loop._wait(Verdict(VerdictKind.WAIT, "usage limit", wait_until=sys_calls.time()))
    loop._await_worker_slot()  # waking up from a wait others may share
    assert loop.asked == [3.0, 3.0]


def test_a_herd_start_still_waits_for_another_daemons_start(private_state_home: Path) -> None:
    other = Loop(private_state_home, stagger_s=3.0)
    assert other._await_worker_slot()
    mine = Loop(private_state_home, stagger_s=3.0)
    # Its reserved start is about 3 s after the other's: the pause (a stop, here) ends it.
    assert not mine._await_worker_slot()
    assert mine.asked == [3.0]


def test_a_zero_stagger_is_off(private_state_home: Path) -> None:
    loop = Loop(private_state_home, stagger_s=0.0)
    assert loop._await_worker_slot()
    assert loop.asked == []
