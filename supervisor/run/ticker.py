"""The loop's heartbeat while it waits or a worker runs: about once a second, signal flags,
the deadline (a worker still running then is ended), the stop sentinel, control requests from
``unattended extend``, a ``.unattended/`` a worker may have deleted, the state heartbeat, the
systemd watchdog, and orphans to reap. The waits (backoff, usage limit, a worker slot) are made
of these ticks, so a wait never makes the daemon deaf.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from unattended.contracts.status import RunStatus
from unattended.platform_adapters import process, proctree
from unattended.safety.verdict import Verdict
from unattended.supervisor.records.fsio import UnsafePath, append_line, ensure_private_dir
from unattended.supervisor.records.pidfile import write_pid_file
from unattended.supervisor.run.ports import Clock, ServiceNotifier, Slots, WorkerHandle
from unattended.supervisor.run.recorder import Recorder

if TYPE_CHECKING:
    from unattended.supervisor.run.loop import RunContext
    from unattended.supervisor.run.signals import SignalFlags

HEARTBEAT_S = 25.0  # the issue asks for at least every 30 s
TICK_S = 1.0


class Ticker:
    def __init__(
        self,
        ctx: RunContext,
        flags: SignalFlags,
        recorder: Recorder,
        clock: Clock,
        sd: ServiceNotifier,
    ) -> None:
        self.ctx = ctx
        self.flags = flags
        self.recorder = recorder
        self.clock = clock
        self.sd = sd
        self.stop_requested = False
        self.worker: WorkerHandle | None = None  # the running worker, for signals
        # The next worker may start together with other daemons' (the run's first, or after a
        # wait they may all wake up from): it takes the start stagger. Ordinary iterations don't.
        self.herd_risk = True
        # A WatchdogSec= shorter than our tick would be missed: tick at least that often.
        self.tick_s = min(TICK_S, sd.watchdog_interval_s or TICK_S)

    # ----- one tick --------------------------------------------------------------------
    def tick(self) -> None:
        process.ticked()  # a wait on git right after this tick need not tick again at once
        now = self.clock.time()
        self._apply_control(now)
        worker, log = self.worker, self.recorder.log
        if worker is not None:
            if self.flags.escalate:
                worker.escalate()
            elif self.flags.stop_now and not worker.stopping:
                log(f"received {self.flags.first_signal}: ending the worker now", kind="signal")
                worker.stop("stop")
            elif now >= self.ctx.state.deadline.timestamp() and not worker.stopping:
                # --hours holds during a worker too: as `stop --now`, then the run is capped.
                log("deadline reached: ending the worker now", kind="deadline")
                worker.stop("deadline")
        if not self.stop_requested and self.ctx.paths.stop.exists():
            self.stop_requested = True
            log(
                "stop requested (sentinel file): ending after the current iteration",
                kind="stop_request",
            )
        if self._state_dir_damaged():
            self._restore_state_dir()
        if now - self.recorder.last_write >= HEARTBEAT_S or self.recorder.tree_changed():
            if self._state_dir_damaged():  # deleted since the check above
                self._restore_state_dir()
            else:
                self.recorder.write()
        # WATCHDOG=1 on the monotonic clock: a wall-clock step back must not silence it.
        self.sd.watchdog_if_due(self.clock.monotonic())
        if self.flags.child_exited:  # only then: a scan of our children costs ~1 ms
            self.flags.child_exited = False
            proctree.reap_orphans()  # tool processes that detached and later exited

    def _apply_control(self, now: float) -> None:
        from unattended.supervisor.run.control import apply_pending

        for line in apply_pending(self.ctx.paths, self.ctx.state, self.ctx.settings, now):
            self.recorder.log(line, kind="control")

    def _state_dir_damaged(self) -> bool:
        """A worker's `git clean -fdx` removed .unattended/ (or part of it, when a state write
        raced the removal): state.json or, while the run lives, the pid file is missing."""
        paths = self.ctx.paths
        if not paths.root.is_dir() or not paths.state.exists():
            return True
        return not self.ctx.state.status.terminal and not paths.pid.exists()

    def _restore_state_dir(self) -> None:
        """A worker deleted .unattended/ (git clean -fdx): put back what we hold in memory.

        The records in the git dir survive a clean; only if they went too (``rm -rf .git/...``,
        or no git dir) is this run's telemetry written again from memory."""
        paths = self.ctx.paths
        records_lost = not paths.state.exists()
        try:
            ensure_private_dir(paths.root)
            ensure_private_dir(paths.iterations)
        except UnsafePath:
            return  # a symlink where our directory was: refused and logged; nothing to restore
        self.recorder.write()
        write_pid_file(paths.pid, os.getpid(), self.ctx.state.pid_create_time)
        if records_lost:
            for line in self.ctx.telemetry:
                append_line(paths.telemetry, line)
        if not records_lost:
            restored = (
                f"recreated it (state.json, the pid file, a new run.log copy); the records in "
                f"{paths.records} are intact"
            )
        elif paths.records == paths.root:
            restored = "recreated state.json, the pid file and this run's telemetry from memory"
        else:
            restored = (
                f"the records in {paths.records} were deleted too: recreated state.json, "
                f"the pid file and this run's telemetry from memory"
            )
        self.recorder.log(f".unattended/ was deleted (by the worker?): {restored}", kind="restored")

    # ----- waiting ---------------------------------------------------------------------
    def should_stop_waiting(self) -> bool:
        """A stop request, a signal, or the deadline (which `extend` may have moved)."""
        past_deadline = self.clock.time() >= self.ctx.state.deadline.timestamp()
        return self.stop_requested or self.flags.stop_now or past_deadline

    def pause(self, seconds: float) -> bool:
        """Sleep, tick; True when the waiting should end (see ``should_stop_waiting``)."""
        self.clock.sleep(seconds)
        self.tick()
        return self.should_stop_waiting()

    def wait(self, verdict: Verdict) -> None:
        """A WAIT verdict: on disk as ``resume_at`` (a resumed run honours it), then ticks."""
        rec = self.recorder
        self.herd_risk = True  # other daemons may wake up at the same instant (a limit reset)
        until = verdict.wait_until or self.clock.time()
        resume_at = datetime.fromtimestamp(until, UTC)
        rec.set(RunStatus.WAITING, resume_at=resume_at)
        rec.log(f"waiting until {resume_at:%Y-%m-%dT%H:%M:%SZ}: {verdict.reason}", kind="wait")
        if "usage limit" in verdict.reason:
            rec.notify("waiting", verdict.reason)
        self.wait_until(until)
        rec.set(RunStatus.WAITING, resume_at=None)

    def wait_until(self, until: float) -> None:
        stop = self.should_stop_waiting()
        while self.clock.time() < until and not stop:
            stop = self.pause(min(self.tick_s, max(0.05, until - self.clock.time())))

    def await_worker_slot(self, slots: Slots) -> bool:
        """Wait for a slot of ``max_parallel_workers`` and, when a herd of daemons may start
        workers together (see ``herd_risk``), for the start stagger. False when a stop arrived
        or the deadline passed meanwhile (the gate then ends the run)."""
        logged = False
        while not slots.try_acquire():
            if not logged:
                self.recorder.set(RunStatus.WAITING)  # state first: a log reader finds it
                self.recorder.log(
                    "waiting for a worker slot (max_parallel_workers)", kind="slot_wait"
                )
                logged = True
            if self.pause(self.tick_s):
                return False
        delay = 0.0
        stagger = self.ctx.settings.start_stagger_s
        if self.herd_risk and stagger > 0:
            delay = slots.stagger_delay(self.clock.time(), stagger)
        self.herd_risk = False
        if slots.last_error:
            self.recorder.warn(slots.last_error)  # the pool failed open: say so once
            slots.last_error = None
        until = self.clock.monotonic() + delay
        while self.clock.monotonic() < until:
            if self.pause(min(self.tick_s, until - self.clock.monotonic())):
                slots.release()
                return False
        return True
