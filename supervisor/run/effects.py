"""The loop's effects while it waits or a worker runs: ticks, state writes, log lines, slots,
notifications, and the clean-up at the end. The decisions stay in ``loop.py`` and ``safety``.

A tick happens about once a second: signal flags, the stop sentinel, control requests from
``unattended extend``, a ``.unattended/`` a worker may have deleted, the heartbeat, the systemd
watchdog, and orphans to reap.
"""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from unattended.contracts.status import RunStatus
from unattended.platform_adapters import proctree
from unattended.safety.verdict import Verdict
from unattended.supervisor.records.fsio import append_line, ensure_private_dir, sys_calls
from unattended.supervisor.records.pidfile import write_pid_file
from unattended.supervisor.records.state import write_state

if TYPE_CHECKING:
    from unattended.supervisor.run.loop import RunContext
    from unattended.supervisor.run.signals import SignalFlags
    from unattended.supervisor.run.slots import WorkerSlots

HEARTBEAT_S = 25.0  # the issue asks for at least every 30 s
TICK_S = 1.0


class DiskFull(Exception):
    pass


class LoopEffects:
    ctx: RunContext
    flags: SignalFlags
    sd: Any
    worker: Any
    slots: WorkerSlots
    tick_s: float
    _alerts: set[tuple[str, str]]
    stop_requested: bool
    _last_write: float
    _last_watchdog: float
    # The next worker may start together with other daemons' (the run's first, or after a
    # wait they may all wake up from): it takes the start stagger. Ordinary iterations do not.
    herd_risk: bool = True

    # ----- before a worker -------------------------------------------------------------
    def _await_worker_slot(self) -> bool:
        """Wait for a slot of ``max_parallel_workers`` and, when a herd of daemons may start
        workers together (see ``herd_risk``), for the start stagger. False when a stop arrived
        or the deadline passed meanwhile (the gate then ends the run)."""
        logged = False
        while not self.slots.try_acquire():
            if not logged:
                self._set(RunStatus.WAITING)  # state first: a reader of the log line finds it
                self._log("waiting for a worker slot (max_parallel_workers)", kind="slot_wait")
                logged = True
            if self._pause(self.tick_s):
                return False
        delay = 0.0
        if self.herd_risk and self.ctx.settings.start_stagger_s > 0:
            delay = self.slots.stagger_delay(sys_calls.time(), self.ctx.settings.start_stagger_s)
        self.herd_risk = False
        if self.slots.last_error:
            self._warn(self.slots.last_error)  # the pool failed open: say so once
            self.slots.last_error = None
        until = sys_calls.monotonic() + delay
        while sys_calls.monotonic() < until:
            if self._pause(min(self.tick_s, until - sys_calls.monotonic())):
                self.slots.release()
                return False
        return True

    def _should_stop_waiting(self) -> bool:
        """A stop request, a signal, or the deadline (which `extend` may have moved)."""
        past_deadline = sys_calls.time() >= self.ctx.state.deadline.timestamp()
        return self.stop_requested or self.flags.stop_now or past_deadline

    def _pause(self, seconds: float) -> bool:
        """Sleep, tick; True when the waiting should end (see ``_should_stop_waiting``)."""
        self._sleep(seconds)
        self._tick()
        return self._should_stop_waiting()

    # ----- after a worker ------------------------------------------------------------
    def _budget_alerts(self) -> None:
        """80 % warn, 90 % critical (with a notification), 95 % stop: each logged once."""
        from unattended.safety.budget import alert_level

        st, s = self.ctx.state, self.ctx.settings
        caps = (
            ("cost", st.cost_usd, s.max_cost_usd, lambda v: f"${v:,.2f}"),
            ("tokens", st.total_tokens, s.max_tokens, lambda v: f"{int(v):,} tokens"),
        )
        for name, used, cap, fmt in caps:
            level = alert_level(used, cap)
            if level == "ok" or cap is None or (name, level) in self._alerts:
                continue
            self._alerts.add((name, level))
            message = (
                f"budget {level}: {name} at {100 * used / cap:.0f}% ({fmt(used)} of {fmt(cap)})"
            )
            self._log(message, kind="budget_alert", level=level)
            if level == "critical":
                self._notify("critical", message)

    # ----- waiting and ticking ---------------------------------------------------------
    def _wait(self, verdict: Verdict) -> None:
        self.herd_risk = True  # other daemons may wake up at the same instant (a limit reset)
        until = verdict.wait_until or sys_calls.time()
        resume_at = datetime.fromtimestamp(until, UTC)
        self._set(RunStatus.WAITING, resume_at=resume_at)
        self._log(f"waiting until {resume_at:%Y-%m-%dT%H:%M:%SZ}: {verdict.reason}", kind="wait")
        if "usage limit" in verdict.reason:
            self._notify("waiting", verdict.reason)
        stop = self._should_stop_waiting()
        while sys_calls.time() < until and not stop:
            stop = self._pause(min(self.tick_s, max(0.05, until - sys_calls.time())))
        self._set(RunStatus.WAITING, resume_at=None)

    def _sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)

    def _tick(self) -> None:
        now = sys_calls.time()
        self._apply_control(now)
        if self.worker is not None:
            if self.flags.escalate:
                self.worker.escalate()
            elif self.flags.stop_now and not getattr(self.worker, "stopping", False):
                self._log(
                    f"received {self.flags.first_signal}: ending the worker now", kind="signal"
                )
                self.worker.stop("stop")
        if not self.stop_requested and self.ctx.paths.stop.exists():
            self.stop_requested = True
            self._log(
                "stop requested (sentinel file): ending after the current iteration",
                kind="stop_request",
            )
        if not self.ctx.paths.root.is_dir() or not self.ctx.paths.state.exists():
            self._restore_state_dir()
        if now - self._last_write >= HEARTBEAT_S:
            self._write()
        self._watchdog(now)
        if self.flags.child_exited:  # only then: a scan of our children costs ~1 ms
            self.flags.child_exited = False
            proctree.reap_orphans()  # tool processes that detached and later exited

    def _apply_control(self, now: float) -> None:
        from unattended.supervisor.run.control import apply_pending

        for line in apply_pending(self.ctx.paths, self.ctx.state, self.ctx.settings, now):
            self._log(line, kind="control")

    def _watchdog(self, now: float) -> None:
        """WATCHDOG=1 from the main loop itself, on the monotonic clock: a wall-clock step back
        (NTP after a laptop wakes) must not silence it."""
        del now
        if hasattr(self.sd, "watchdog_if_due"):
            self.sd.watchdog_if_due(sys_calls.monotonic())

    def _restore_state_dir(self) -> None:
        """A worker deleted .unattended/ (git clean -fdx): put back what we hold in memory."""
        paths = self.ctx.paths
        ensure_private_dir(paths.iterations)
        self._write()
        write_pid_file(paths.pid, os.getpid(), self.ctx.state.pid_create_time)
        for line in self.ctx.telemetry:
            append_line(paths.telemetry, line)
        self._log(
            ".unattended/ was deleted (by the worker?): recreated state.json, the pid file "
            "and this run's telemetry from memory",
            kind="restored",
        )

    # ----- state and log ---------------------------------------------------------------
    def _set(self, status: RunStatus, **fields: Any) -> None:
        st = self.ctx.state
        for key, value in fields.items():
            if key in ("worker_started_at",) and isinstance(value, float):
                value = datetime.fromtimestamp(value, UTC)
            setattr(st, key, value)
        changed = st.status != status
        st.status = status
        self._write()
        if changed and hasattr(self.sd, "status"):
            self.sd.status(f"{status.value}: iteration {st.iteration} of {st.max_iterations}")

    def _write(self) -> None:
        st = self.ctx.state
        inhibitor = getattr(self, "inhibitor", None)
        if inhibitor is not None:  # `.held` notices (and logs once) an inhibitor that died
            st.inhibitor = inhibitor.describe() if inhibitor.held else None
        st.updated_at = datetime.fromtimestamp(sys_calls.time(), UTC)
        self._guard_disk(lambda: write_state(self.ctx.paths, st))
        self._last_write = sys_calls.time()

    def _guard_disk(self, action: Any) -> None:
        try:
            action()
        except FileNotFoundError:
            ensure_private_dir(self.ctx.paths.iterations)
            action()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFull(exc.strerror or "no space left on device") from None
            raise

    def _log(
        self, message: str, iteration: int | None = None, kind: str = "info", **fields: Any
    ) -> None:
        self.ctx.log.event(message, iteration=iteration, kind=kind, **fields)

    def _warn(self, message: str) -> None:
        self._log(f"warning: {message}", kind="warning")

    def _notify(self, status: str, reason: str, summary: str = "") -> None:
        try:
            from unattended.platform_adapters.notify import NotifyEvent, notify

            st = self.ctx.state
            event = NotifyEvent(
                status=status,
                reason=reason,
                project=str(self.ctx.project),
                iteration=st.iteration,
                cost_usd=st.cost_usd,
                summary=summary,
            )
            notify(event, self.ctx.settings.notify_cmd, self._warn)
        except Exception as exc:  # a notifier never ends the run
            self._warn(f"notification failed: {exc}")

    def _summary(self) -> str:
        """The run's headline lines, for the final notification."""
        try:
            from unattended.supervisor.run.summary import notification_summary

            ctx = self.ctx
            return notification_summary(ctx.project, ctx.state, ctx.history, sys_calls.time())
        except Exception as exc:  # noqa: BLE001 - the plain reason is sent instead
            self._warn(f"no summary for the notification: {exc}")
            return ""

    # ----- after the run ---------------------------------------------------------------
    def _prune(self, status: RunStatus) -> None:
        """Old archived runs beyond ``keep_runs`` go with their snapshot refs, whatever the
        outcome; only those runs, and only this work tree's snapshots of them: another work
        tree of the repository shares the refs, and its runs (maybe live) are not ours to
        prune; a run whose archive a worker's `git clean` erased keeps its snapshots.
        Never fatal: housekeeping."""
        from unattended.supervisor.git.snapshots import (
            Snapshotter,
            prune_snapshots,
            worktree_id,
        )
        from unattended.supervisor.run.begin import prune_archived_runs
        from unattended.supervisor.run.iteration import flush_snapshots

        del status  # a done run no longer prunes more than any other
        paths, st = self.ctx.paths, self.ctx.state
        flush_snapshots(self._warn)
        try:
            removed = prune_archived_runs(paths, self.ctx.settings.keep_runs)
            worktree = worktree_id(self.ctx.git_dir)
            pruned = prune_snapshots(self.ctx.project, {st.run_id}, worktree, removed)
            (self.ctx.git_dir / Snapshotter.INDEX_NAME).unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001 - housekeeping never changes the outcome
            self._warn(f"could not prune old runs or snapshots: {exc}")
            return
        if removed or pruned:
            self._log(
                f"pruned {len(removed)} archived run(s) and {pruned} old snapshot ref(s)",
                kind="prune",
            )
