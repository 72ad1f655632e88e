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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unattended.contracts.status import RunStatus
from unattended.platform_adapters import proctree
from unattended.safety.verdict import Verdict
from unattended.supervisor.records.fsio import (
    UnsafePath,
    append_line,
    ensure_private_dir,
    sys_calls,
)
from unattended.supervisor.records.pidfile import write_pid_file
from unattended.supervisor.records.state import write_state

if TYPE_CHECKING:
    from unattended.supervisor.run.loop import RunContext
    from unattended.supervisor.run.signals import SignalFlags
    from unattended.supervisor.run.slots import WorkerSlots

HEARTBEAT_S = 25.0  # the issue asks for at least every 30 s
TICK_S = 1.0
SUMMARY_TIMEOUT_S = 30.0  # the final notification's summary (git log); the tick goes on
STAGGER_GAP_S = 3.0  # worker starts across this user's daemons are at least this far apart


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

    # ----- before a worker -------------------------------------------------------------
    def _await_worker_slot(self) -> bool:
        """Wait for a slot of ``max_parallel_workers`` and for the start stagger. False when a
        stop arrived or the deadline passed meanwhile (the gate then ends the run)."""
        logged = False
        while not self.slots.try_acquire():
            if not logged:
                self._set(RunStatus.WAITING)  # state first: a reader of the log line finds it
                self._log("waiting for a worker slot (max_parallel_workers)", kind="slot_wait")
                logged = True
            if self._pause(self.tick_s):
                return False
        delay = self.slots.stagger_delay(sys_calls.time(), STAGGER_GAP_S)
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
        if self._state_dir_damaged():
            self._restore_state_dir()
        if now - self._last_write >= HEARTBEAT_S or self._tree_changed():
            if self._state_dir_damaged():  # deleted since the check above
                self._restore_state_dir()
            else:
                self._write()
        self._watchdog(now)
        if self.flags.child_exited:  # only then: a scan of our children costs ~1 ms
            self.flags.child_exited = False
            proctree.reap_orphans()  # tool processes that detached and later exited

    def _state_dir_damaged(self) -> bool:
        """A worker's `git clean -fdx` removed .unattended/ (or part of it, when a state write
        raced the removal): state.json or, while the run lives, the pid file is missing."""
        paths = self.ctx.paths
        if not paths.root.is_dir() or not paths.state.exists():
            return True
        return not self.ctx.state.status.terminal and not paths.pid.exists()

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
        self._write()
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
        self._log(f".unattended/ was deleted (by the worker?): {restored}", kind="restored")

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

    def _tree_now(self) -> list[tuple[int, float]]:
        """Every process of the run alive now (the worker's tree, helpers), as last scanned."""
        from unattended.platform_adapters import process

        seen = set(process.live_identities())
        if self.worker is not None:
            seen.update(self.worker.seen_identities())
        return sorted(seen)

    def _tree_changed(self) -> bool:
        recorded = [(d.pid, d.create_time) for d in self.ctx.state.descendants]
        return recorded != self._tree_now()

    def _write(self) -> None:
        from unattended.contracts.state import SeenProcess

        st = self.ctx.state
        # On disk at every write: after a kill -9 the next start ends what is still ours.
        st.descendants = [SeenProcess(pid=p, create_time=c) for p, c in self._tree_now()]
        inhibitor = getattr(self, "inhibitor", None)
        if inhibitor is not None:  # `.held` notices (and logs once) an inhibitor that died
            st.inhibitor = inhibitor.describe() if inhibitor.held else None
        st.updated_at = datetime.fromtimestamp(sys_calls.time(), UTC)
        self._guard_disk(lambda: write_state(self.ctx.paths, st))
        self._last_write = sys_calls.time()
        if self.ctx.settings.metrics_textfile:  # --metrics-textfile: same moment, same facts
            from unattended.supervisor.records.prometheus import export_textfile

            export_textfile(self.ctx, self._warn)

    def _guard_disk(self, action: Any) -> None:
        try:
            action()
        except UnsafePath:
            return  # a symlink planted in our tree: refused, logged by fsio's listener, run on
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
            from unattended.platform_adapters.process import call_ticking
            from unattended.supervisor.run.summary import notification_summary

            ctx, now = self.ctx, sys_calls.time()
            return call_ticking(
                lambda: notification_summary(ctx.project, ctx.state, ctx.history, now),
                SUMMARY_TIMEOUT_S,
            )
        except Exception as exc:  # noqa: BLE001 - the plain reason is sent instead
            self._warn(f"no summary for the notification: {exc}")
            return ""

    # ----- after the run ---------------------------------------------------------------
    def _cap_raw_logs(self, number: int) -> None:
        """Before worker ``number``: the oldest raw logs go until all of them, with room for
        this worker's own cap, fit under ``max_logs_mb``. Never fatal: it is housekeeping."""
        from unattended.supervisor.records.rawlogs import RawLogs

        s, paths = self.ctx.settings, self.ctx.paths
        logs = getattr(self, "_raw_logs", None)
        if logs is None:
            logs = self._raw_logs = RawLogs.scan(paths)  # the once-per-run listing
        elif number > 1:
            logs.add_iteration(number - 1)
        mb = 1024 * 1024
        removed = logs.prune(int(s.max_logs_mb * mb), int(s.max_iteration_log_mb * mb))
        if not removed:
            return
        names = [_shown(path, paths.records) for path, _ in removed]
        listed = ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"
        freed = sum(size for _, size in removed) / mb
        self._log(
            f"raw logs over max_logs_mb = {s.max_logs_mb:g}: removed the {len(removed)} oldest "
            f"({freed:.1f} MB: {listed}); {logs.total / mb:.1f} MB kept",
            kind="prune_logs",
        )

    def _prune(self, status: RunStatus) -> None:
        """Old archived runs beyond ``keep_runs`` go with their snapshot refs; a successful run
        keeps only its own snapshots. Never fatal: it is housekeeping."""
        from unattended.supervisor.git.snapshots import prune_snapshots
        from unattended.supervisor.run.begin import prune_archived_runs

        paths, st = self.ctx.paths, self.ctx.state
        try:
            removed = prune_archived_runs(paths, self.ctx.settings.keep_runs)
            keep = {st.run_id}
            if status is not RunStatus.DONE and paths.runs.is_dir():
                keep |= {p.name for p in paths.runs.iterdir() if p.is_dir()}
            pruned = prune_snapshots(self.ctx.project, keep)
        except Exception as exc:  # noqa: BLE001 - housekeeping never changes the outcome
            self._warn(f"could not prune old runs or snapshots: {exc}")
            return
        if removed or pruned:
            self._log(
                f"pruned {len(removed)} archived run(s) and {pruned} old snapshot ref(s)",
                kind="prune",
            )


def _shown(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
