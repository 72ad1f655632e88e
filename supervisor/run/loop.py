"""The relay loop: gather facts → ask ``safety`` → act → record. It reads like the run.log it
writes.

One worker at a time. The loop holds its collaborators, each behind a small interface
(``ports``): a :class:`Recorder` for state.json, run.log and notifications, a :class:`Ticker`
that keeps the daemon responsive about once a second while a worker runs or the loop waits,
the worker slots, the clock, the worker factory and the git evidence. The daemon passes the
real ones; ``tests/supervisor/run/driver.py`` passes a fake clock and scripted workers.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unattended.contracts.cli_versions import in_tested_range, untested_warning
from unattended.contracts.exit_codes import ExitCode
from unattended.contracts.iteration import IterationRecord
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.contracts.state import RunState
from unattended.contracts.status import Outcome, RunStatus
from unattended.contracts.timefmt import fmt_duration
from unattended.safety.gutter import advance, after_escalation, from_state, judge, to_state
from unattended.safety.verdict import Verdict, VerdictKind
from unattended.supervisor.records import telemetry as records
from unattended.supervisor.records.fsio import (
    append_line,
    ensure_private_dir,
    read_private_bytes,
)
from unattended.supervisor.records.runlog import RunLog
from unattended.supervisor.records.steps import read_steps
from unattended.supervisor.run import iteration as it
from unattended.supervisor.run import registry
from unattended.supervisor.run.alerts import BudgetAlerts
from unattended.supervisor.run.crashed import CrashedWorker, crashed_record
from unattended.supervisor.run.history import earlier_records, first_head, resumed_history
from unattended.supervisor.run.housekeeping import RawLogCap
from unattended.supervisor.run.ports import (
    Clock,
    GitEvidence,
    NoServiceNotifier,
    RepoGitEvidence,
    ServiceNotifier,
    Slots,
    SystemClock,
    WorkerFactory,
    spawn_worker,
)
from unattended.supervisor.run.prompt import (
    PromptError,
    PromptSource,
    build_continuation,
    build_prompt,
    read_prompt,
)
from unattended.supervisor.run.recorder import DiskFull, Notify, Recorder, system_notify
from unattended.supervisor.run.signals import SignalFlags
from unattended.supervisor.run.slots import WorkerSlots
from unattended.supervisor.run.ticker import Ticker

if TYPE_CHECKING:
    from unattended.platform_adapters.inhibit import Inhibitor


HISTORY_WINDOW = 50  # the newest iterations kept in memory: the rules keep running streaks
TELEMETRY_KEPT = 1_000  # the newest telemetry lines kept, to recreate a deleted telemetry file

PRICING_TIMEOUT_S = 60.0  # reading a killed worker's transcript; the tick goes on meanwhile
SUMMARY_TIMEOUT_S = 30.0  # the final notification's summary (git log); the tick goes on


@dataclass
class RunContext:
    project: Path
    paths: RunPaths
    git_dir: Path
    settings: Settings
    state: RunState
    log: RunLog
    prompt_source: PromptSource
    environ: dict[str, str]
    resumed: bool = False
    history: deque[IterationRecord] = field(default_factory=lambda: deque(maxlen=HISTORY_WINDOW))
    telemetry: deque[str] = field(default_factory=lambda: deque(maxlen=TELEMETRY_KEPT))
    first_head: str | None = None  # HEAD before the run's first iteration
    crashed: CrashedWorker | None = None  # resumed: the iteration the dead daemon was in


class RelayLoop:
    def __init__(
        self,
        ctx: RunContext,
        flags: SignalFlags,
        sd: ServiceNotifier | None = None,
        inhibitor: Inhibitor | None = None,
        *,
        clock: Clock | None = None,
        spawn: WorkerFactory = spawn_worker,
        git: GitEvidence | None = None,
        notify: Notify = system_notify,
        slots: Slots | None = None,
    ) -> None:
        self.ctx = ctx
        self.flags = flags
        self.clock = clock or SystemClock()
        self.sd = sd or NoServiceNotifier()
        self.spawn = spawn
        self.git = git or RepoGitEvidence(ctx.project, ctx.git_dir, ctx.state.run_id, ctx.settings)
        self.recorder = Recorder(ctx, self.clock, self.sd, inhibitor, notify)
        self.ticker = Ticker(ctx, flags, self.recorder, self.clock, self.sd)
        self.recorder.seen_processes = self._seen_processes
        self.slots = slots or WorkerSlots(
            ctx.settings.max_parallel_workers, registry.state_dir(ctx.environ)
        )
        self.alerts = BudgetAlerts()
        self.raw_logs = RawLogCap(ctx.paths, ctx.settings)
        # The storm breaker reads the newest launches only: keep a bounded window of them.
        window = max(64, ctx.settings.max_launches_per_minute)
        self.launch_times: deque[float] = deque(maxlen=window)
        self.model = ctx.state.model or ctx.settings.model
        self.escalated_at: int | None = None
        self.pending_handoff: str | None = None
        self.prompt_note: str | None = None
        self._last_prompt: str | None = None
        self._planned_model = self.model  # the model the last worker was asked for
        self.earlier = earlier_records(ctx.paths)  # the runway's fallback: this project's past
        self.streaks = from_state(ctx.state.gutter)  # a resumed run goes on counting
        if ctx.resumed:
            self._reload_history()

    # ----- the story -------------------------------------------------------------------
    def run(self) -> ExitCode:
        from unattended.platform_adapters.process import ticking

        # Git, --done-when, pricing, the summary: whatever blocks, the tick goes on.
        with ticking(self.ticker.tick, self.ticker.tick_s):
            try:
                verdict = self._resume() or self._relay()
            except DiskFull as exc:
                verdict = Verdict(VerdictKind.FAILED, f"disk full: {exc}")
            return self._finish(verdict)

    def _reload_history(self) -> None:
        """A resumed run's newest iterations, from the end of its telemetry (not all of it)."""
        ctx = self.ctx
        lines, recs = resumed_history(ctx.paths, TELEMETRY_KEPT)
        ctx.telemetry.extend(lines)
        ctx.history.extend(recs)
        ctx.first_head = first_head(ctx.paths)

    def _resume(self) -> Verdict | None:
        """A resumed run first records the iteration its daemon died in (priced, counted by the
        caps and the gutter), or finishes the wait it was in (``resume_at``). A terminal
        verdict ends the run before any worker starts."""
        ctx = self.ctx
        if not ctx.resumed:
            return None
        recorded = ctx.history[-1].number if ctx.history else 0
        if ctx.crashed is not None and ctx.crashed.number > recorded:
            verdict = self._conclude(self._crashed_record(ctx.crashed))
            return verdict if verdict.terminal else None
        resume_at = ctx.state.resume_at
        if resume_at is not None and resume_at.timestamp() > self.clock.time():
            reason = "resuming the wait the crashed run was in"
            self.ticker.wait(Verdict(VerdictKind.WAIT, reason, wait_until=resume_at.timestamp()))
        return None

    def _crashed_record(self, crashed: CrashedWorker) -> IterationRecord:
        ctx = self.ctx
        before = ctx.history[-1].git_after.head if ctx.history else ctx.first_head
        after = self.git.point(crashed.number, "after", self._warn).head
        record = crashed_record(ctx.paths, crashed, before, after)
        record.model = record.model or self.model
        self._usage_without_result(record)
        return record

    def _relay(self) -> Verdict:
        from unattended.safety.decide import Limits, gate
        from unattended.safety.runway import estimate_next

        while True:
            # Rebuilt every time round: `unattended extend` may have moved a cap.
            limits = Limits.from_settings(self.ctx.settings, self.ctx.state.deadline.timestamp())
            estimate = estimate_next(self.ctx.history, self.earlier)
            if estimate.basis.startswith("default"):
                estimate = None  # no evidence yet: never refuse a run on a guess
            verdict = gate(self._facts(), limits, self.launch_times, estimate)
            if verdict.kind is VerdictKind.WAIT:
                self.ticker.wait(verdict)
                continue
            if verdict.terminal:
                return verdict
            if not self.ticker.await_worker_slot(self.slots):
                continue  # a stop arrived while waiting: the gate ends the run
            try:
                record = self._iterate()
            except PromptError as exc:
                return Verdict(VerdictKind.FAILED, f"no prompt for the worker: {exc}")
            finally:
                self.slots.release()
            verdict = self._conclude(record)
            if verdict.terminal:
                return verdict

    def _conclude(self, record: IterationRecord) -> Verdict:
        """Account the iteration, ask ``safety``, record, and react: escalate, note, wait."""
        from unattended.safety.decide import Limits, decide

        limits = Limits.from_settings(self.ctx.settings, self.ctx.state.deadline.timestamp())
        self._account(record)
        self.streaks = advance(self.streaks, judge(record, record.done_when_passed))
        self._budget_alerts()
        verdict = decide(self._facts(done_when=record.done_when_passed), limits)
        self._record(record, verdict)
        if verdict.terminal:
            return verdict
        if verdict.escalate and self.ctx.settings.escalate_model:
            self._escalate(record.number, verdict.reason)
        self.prompt_note = verdict.prompt_note
        if verdict.kind is VerdictKind.WAIT:
            self.ticker.wait(verdict)
        return verdict

    # ----- facts -----------------------------------------------------------------------
    def _facts(self, done_when: bool | None = None) -> Any:
        from unattended.safety.decide import RunFacts

        st = self.ctx.state
        quota = {
            name: (w.utilization, w.resets_at.timestamp() if w.resets_at else None)
            for name, w in st.quota.items()
        }
        return RunFacts(
            history=tuple(self.ctx.history),
            now=self.clock.time(),
            cost_usd=st.cost_usd,
            tokens=st.total_tokens,
            stop_requested=self.ticker.stop_requested or self.flags.stop_now,
            done_when_passed=done_when,
            escalated_at=self.escalated_at,
            quota=quota,
            streaks=self.streaks,
            launched=st.iteration,
        )

    # ----- one iteration ---------------------------------------------------------------
    def _plan(self, number: int) -> it.WorkerPlan:
        try:
            user_prompt = read_prompt(self.ctx.prompt_source)
        except PromptError as exc:
            if self._last_prompt is None:
                raise
            # A worker's `git clean` may take an untracked PROMPT.md: keep the task going.
            self._warn(f"{exc}; using the prompt as last read")
            user_prompt = self._last_prompt
        resume = self._session_to_resume()
        if resume and user_prompt == self._last_prompt:
            prompt = build_continuation(self.prompt_note)
        else:  # a fresh session, or a resumed one whose prompt file changed: the full prompt
            prompt = build_prompt(user_prompt, self.pending_handoff, self.prompt_note)
        self._last_prompt = user_prompt
        self._planned_model = self.model
        self.pending_handoff = None
        return it.WorkerPlan(number, prompt, self.model, resume)

    def _session_to_resume(self) -> str | None:
        from unattended.safety.session import session_to_resume

        last = self.ctx.history[-1] if self.ctx.history else None
        s = self.ctx.settings
        return session_to_resume(
            last,
            s.session_policy,
            model_changed=self._planned_model != self.model,
            window=self._context_window(last) if last else 0,
            warn_pct=s.context_warn_pct,
            stop_pct=s.context_stop_pct,
        )

    def _context_window(self, record: IterationRecord | None = None) -> int:
        """The window of ``record``'s model, or of the next worker's: the last reported window
        when the model has not changed (the CLI's default model may be a 1M one)."""
        from unattended.contracts.models_table import context_window_for

        last = self.ctx.history[-1] if self.ctx.history else None
        if record is None and last and last.context_window and self.model in (None, last.model):
            record = last
        return context_window_for(
            record.model if record else self.model,
            record.context_window if record else None,
            self.ctx.settings.context_window,
        )

    def _iterate(self) -> IterationRecord:
        from unattended.supervisor.worker.process import SpawnError, WorkerSpec
        from unattended.supervisor.worker.settings_file import (
            hook_command,
            hook_env,
            write_worker_settings,
        )

        ctx, st, s = self.ctx, self.ctx.state, self.ctx.settings
        number = st.iteration + 1
        plan = self._plan(number)
        before = self.git.point(number, "before", self._warn)
        if ctx.first_head is None:
            ctx.first_head = before.head
        settings_file = write_worker_settings(ctx.paths, hook_command(s))
        argv = it.build_argv(s, plan, settings_file)
        env = it.worker_env(
            ctx.environ,
            ctx.project,
            st.run_id,
            number,
            {**hook_env(s, self._context_window(), ctx.paths), **self._deadline_env()},
        )
        ensure_private_dir(ctx.paths.iterations)
        line = self.raw_logs.before_worker(number)
        if line:
            self._log(line, kind="prune_logs")
        spec = WorkerSpec(
            argv=argv,
            cwd=ctx.project,
            env=env,
            stdout_path=ctx.paths.iteration_stdout(number),
            stderr_path=ctx.paths.iteration_stderr(number),
            timeout_s=s.worker_timeout,
            stall_s=s.stall_timeout,
            grace_s=s.grace_seconds,
            max_log_bytes=int(s.max_iteration_log_mb * 1024 * 1024),
            prompt=plan.prompt,
            prompt_path=ctx.paths.iteration_prompt(number),
        )
        started = self.clock.time()
        self.launch_times.append(started)
        st.iteration = number
        self.recorder.write()  # on disk before the spawn: a kill after it counts this worker
        try:
            worker = self.spawn(spec, lambda: self.flags.escalate)
        except SpawnError as exc:
            if exc.disk_full:
                raise DiskFull(str(exc)) from None
            self._log(f"could not start the worker: {exc}", number, kind="spawn_error")
            return IterationRecord(
                number=number,
                started_at=datetime.fromtimestamp(started, UTC),
                ended_at=datetime.fromtimestamp(started, UTC),
                duration_s=0.0,
                spawn_error=str(exc),
                git_before=before,
                git_after=before,
                model=plan.model,
            )
        mode = f"resuming session {plan.resume_session[:8]}" if plan.resume_session else "fresh"
        self.ticker.worker = worker
        self.recorder.set(RunStatus.RUNNING, worker_pid=worker.pid, worker_started_at=started)
        self._log(f"worker started (pid {worker.pid}, {mode} session)", number, kind="spawn")
        while True:
            worker.pump(self.ticker.tick_s)
            if worker.finished:
                break
            self.ticker.tick()
        outcome = worker.record()
        self.ticker.worker = None
        self.slots.release()  # git evidence and --done-when need no worker slot
        if outcome.disk_full:
            raise DiskFull(f"no space left to write {ctx.paths.iteration_stdout(number).name}")
        ctx.log.machine(
            "worker_exit", number, exit_code=outcome.exit_code, ended_by=outcome.ended_by
        )
        ended = self.clock.time()
        # On disk with the iteration's record, after its git evidence: a death before that finds
        # the iteration unrecorded, as a death during the worker would (a resume prices it from
        # its raw log and records it crashed), and the gap has one state write less.
        self.recorder.note(RunStatus.WAITING, worker_pid=None, worker_started_at=None)
        self.ticker.tick()  # a stop requested during the worker's last second reaches the gate
        after = self.git.point(number, "after", self._warn)
        record = it.record_from_worker(number, started, ended, outcome, before, after)
        record.resumed_session = plan.resume_session is not None
        if not record.model:
            record.model = plan.model
        record.commits, record.files_changed = self.git.commits(before.head, after.head)
        self._usage_without_result(record)
        self._collect_handoff(record)
        record.steps = read_steps(ctx.paths, number)
        record.escalated_model = self.escalated_at is not None
        if s.done_when and record.saw_result:
            record.done_when_passed = self.git.done_when(
                s.done_when, env, abort=lambda: self.flags.stop_now
            )
        return record

    def _deadline_env(self) -> dict[str, str]:
        """For the hook's one-time "commit and finish" near the deadline (at spawn time: an
        `extend` during the worker moves the real deadline, not this hint)."""
        from unattended.contracts.names import ENV_DEADLINE, ENV_DEADLINE_WARN_S

        return {
            ENV_DEADLINE: f"{self.ctx.state.deadline.timestamp():.0f}",
            ENV_DEADLINE_WARN_S: f"{self.ctx.settings.deadline_warn_s:g}",
        }

    def _usage_without_result(self, record: IterationRecord) -> None:
        """A worker killed before its result event still cost money: price its transcript
        (main session and its subagents/, the last line of each message, each model at its
        price), counting only what was written since this worker started."""
        if record.saw_result or not record.session_id:
            return
        try:
            from unattended.platform_adapters.process import call_ticking
            from unattended.supervisor.worker.transcript import find_transcript, transcript_usage

            path = find_transcript(self.ctx.environ, self.ctx.project, record.session_id)
            if path is None:
                return
            totals = call_ticking(
                lambda: transcript_usage(path, since=record.started_at), PRICING_TIMEOUT_S
            )
        except Exception as exc:  # never let accounting end the run
            self._warn(f"could not read the killed worker's transcript: {exc}")
            return
        from unattended.supervisor.worker.accounting import apply_usage

        apply_usage(record, totals.iteration_usage(record.model))
        record.compactions = max(record.compactions, totals.compactions)
        record.usage_source = "transcript"

    def _collect_handoff(self, record: IterationRecord) -> None:
        handoff = self.ctx.paths.handoff
        if not handoff.is_file():
            return
        try:
            text = read_private_bytes(handoff).decode(errors="replace")  # never via a symlink
            handoff.replace(self.ctx.paths.iterations / f"{record.number:04d}.handoff.md")
        except OSError as exc:
            self._warn(f"could not read handoff notes: {exc}")
            return
        if text.strip():
            self.pending_handoff = text
            record.handed_off = True

    # ----- recording -------------------------------------------------------------------
    def _account(self, record: IterationRecord) -> None:
        """The iteration joins the history and the totals before the rules judge the run:
        only what this iteration added (a resumed session's figures are cumulative on newer
        CLIs), every model's tokens, and the larger of the CLI's and the published price."""
        from unattended.supervisor.worker.accounting import settle

        st = self.ctx.state
        settle(record, self.ctx.history[-1] if self.ctx.history else None)
        self.ctx.history.append(record)
        st.input_tokens += record.input_tokens
        st.output_tokens += record.output_tokens
        st.cache_creation_tokens += record.cache_creation_tokens
        st.cache_read_tokens += record.cache_read_tokens
        st.cost_usd = round(st.cost_usd + record.cost_usd, 6)
        st.cost_usd_cli = round(st.cost_usd_cli + (record.cost_usd_cli or 0.0), 6)
        st.cost_usd_priced = round(st.cost_usd_priced + (record.cost_usd_priced or 0.0), 6)
        st.session_id = record.session_id or st.session_id
        if record.cli_version and record.cli_version != st.cli_version:
            if in_tested_range(record.cli_version) is False:
                self._warn(untested_warning(record.cli_version))
            st.cli_version = record.cli_version

    def _record(self, record: IterationRecord, verdict: Verdict) -> None:
        from unattended.safety.decide import Limits

        ctx, st = self.ctx, self.ctx.state
        outcome = verdict.outcome or Outcome.FAILED
        st.last_iteration = records.last_iteration(record, outcome, verdict.reason)
        limits = Limits.from_settings(ctx.settings, st.deadline.timestamp())
        st.gutter = to_state(self.streaks, limits)
        self._record_quota(record)
        # state.json first: a kill before the telemetry line costs a line, never the totals
        status = RunStatus.WAITING if not verdict.terminal else st.status
        self.recorder.set(status)
        self._write_telemetry(record, outcome, verdict.reason)
        denied = ""
        if record.permission_denials:
            denied = f" (denied: {', '.join(sorted(set(record.permission_denials)))})"
        cost = f", ${record.cost_usd:.2f}" if record.cost_usd else ""
        self._log(
            f"{outcome.value} in {fmt_duration(record.duration_s)}{cost}: {verdict.reason}{denied}",
            record.number,
            kind="iteration",
            outcome=outcome.value,
            verdict=verdict.kind.value,
        )
        from unattended.safety.budget import cycle_close_reason

        closed = cycle_close_reason(
            verdict.reason,
            record.context_peak_tokens,
            record.context_window,
            ctx.settings.context_stop_pct,
            not verdict.terminal,
        )
        self._log(f"Cycle {record.number} closed: {closed}", kind="cycle")

    def _record_quota(self, record: IterationRecord) -> None:
        window = records.quota_window(record, self.clock.time())
        if window is not None:
            self.ctx.state.quota[window[0]] = window[1]

    def _write_telemetry(self, record: IterationRecord, outcome: Outcome, reason: str) -> None:
        from unattended.contracts.context_window import auto_compact_point

        window = self._context_window(record)
        compact_at = auto_compact_point(window, self.ctx.environ)
        if record.compactions:
            self._warn(
                f"the CLI compacted worker {record.number}'s context by itself "
                f"({record.compact_pre_tokens or '?'} tokens): the handoff came too late"
            )
        line = records.telemetry_line(
            record, outcome, reason, self.ctx.state.run_id, self.ctx.settings, window, compact_at
        ).model_dump_json()
        self.ctx.telemetry.append(line)
        self.recorder.guard_disk(lambda: append_line(self.ctx.paths.telemetry, line))

    def _escalate(self, number: int, reason: str) -> None:
        old, new = self.model or "the default model", self.ctx.settings.escalate_model
        self.model = new
        self.ctx.state.model = new
        self.escalated_at = number
        self.streaks = after_escalation(self.streaks)  # the stronger model's full chance
        self._log(f"escalating the worker model from {old} to {new}: {reason}", kind="escalate")

    def _budget_alerts(self) -> None:
        """80 % warn, 90 % critical (with a notification): each logged once."""
        for level, message in self.alerts.new_alerts(self.ctx.state, self.ctx.settings):
            self._log(message, kind="budget_alert", level=level)
            if level == "critical":
                self.recorder.notify("critical", message)

    def _seen_processes(self) -> list[tuple[int, float]]:
        """Every process of the run alive now: the worker's tree and the helpers running."""
        from unattended.platform_adapters import process

        seen = set(process.live_identities())
        if self.ticker.worker is not None:
            seen.update(self.ticker.worker.seen_identities())
        return sorted(seen)

    def _log(
        self, message: str, iteration: int | None = None, kind: str = "info", **fields: Any
    ) -> None:
        self.recorder.log(message, iteration, kind, **fields)

    def _warn(self, message: str) -> None:
        self.recorder.warn(message)

    # ----- the end ---------------------------------------------------------------------
    def _finish(self, verdict: Verdict) -> ExitCode:
        st, paths = self.ctx.state, self.ctx.paths
        status = verdict.kind.status
        st.status = status
        st.stop_reason = verdict.reason
        st.exit_code = int(status.exit_code)
        st.worker_pid = None
        st.resume_at = None
        self.sd.stopping()
        # On a full disk the old state.json stays intact; the log line below says what happened.
        with contextlib.suppress(DiskFull):
            self.recorder.write()
        from unattended.supervisor.run.on_done import deliver_run

        if deliver_run(self.ctx, status, self._log):  # --on-done push|pr: before the notice
            with contextlib.suppress(DiskFull):
                self.recorder.write()
        paths.pid.unlink(missing_ok=True)
        paths.stop.unlink(missing_ok=True)
        self._prune(status)
        self.recorder.release_inhibitor()
        self._log(
            f"run ended {status.value} (exit {st.exit_code}) after {st.iteration} iteration(s), "
            f"${st.cost_usd:.2f}: {verdict.reason}",
            kind="end",
            status=status.value,
            exit_code=st.exit_code,
        )
        self.recorder.notify(status.value, verdict.reason, self._summary())
        return status.exit_code

    def _prune(self, status: RunStatus) -> None:
        from unattended.supervisor.run.housekeeping import prune_after_run

        del status  # a done run prunes no more than any other
        it.flush_snapshots(self._warn)  # the snapshot refs still being written
        try:
            line = prune_after_run(
                self.ctx.paths,
                self.ctx.settings.keep_runs,
                self.ctx.state.run_id,
                self.git.prune_snapshots,
            )
        except Exception as exc:  # noqa: BLE001 - housekeeping never changes the outcome
            self._warn(f"could not prune old runs or snapshots: {exc}")
            return
        if line:
            self._log(line, kind="prune")

    def _summary(self) -> str:
        """The run's headline lines, for the final notification."""
        try:
            from unattended.platform_adapters.process import call_ticking
            from unattended.supervisor.run.summary import notification_summary, summary_range

            ctx, now = self.ctx, self.clock.time()

            def summary() -> str:
                commits = self.git.commit_subjects(*summary_range(ctx.first_head, ctx.history))
                return notification_summary(ctx.project, ctx.state, ctx.history, now, commits)

            return call_ticking(summary, SUMMARY_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the plain reason is sent instead
            self._warn(f"no summary for the notification: {exc}")
            return ""
