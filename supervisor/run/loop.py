"""The relay loop: gather facts → ask ``safety`` → act → record. It reads like the run.log it
writes.

One worker at a time. While a worker runs or the loop waits, ``_tick`` keeps the daemon
responsive about once a second: signal flags, the stop sentinel, the heartbeat, the systemd
watchdog, and a ``.unattended/`` directory a worker may have deleted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from unattended.contracts.exit_codes import ExitCode
from unattended.contracts.iteration import IterationRecord
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.contracts.state import RunState
from unattended.contracts.status import Outcome, RunStatus
from unattended.contracts.timefmt import fmt_duration
from unattended.safety.verdict import Verdict, VerdictKind
from unattended.supervisor.records import telemetry as records
from unattended.supervisor.records.fsio import (
    append_line,
    ensure_private_dir,
    read_private_bytes,
    sys_calls,
)
from unattended.supervisor.records.runlog import RunLog
from unattended.supervisor.records.steps import read_steps
from unattended.supervisor.run import iteration as it
from unattended.supervisor.run import registry
from unattended.supervisor.run.effects import TICK_S, DiskFull, LoopEffects
from unattended.supervisor.run.history import earlier_records
from unattended.supervisor.run.prompt import (
    PromptError,
    PromptSource,
    build_continuation,
    build_prompt,
    read_prompt,
)
from unattended.supervisor.run.signals import SignalFlags
from unattended.supervisor.run.slots import WorkerSlots

PRICING_TIMEOUT_S = 60.0  # reading a killed worker's transcript; the tick goes on meanwhile


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
    history: list[IterationRecord] = field(default_factory=list)
    telemetry: list[str] = field(default_factory=list)


class RelayLoop(LoopEffects):
    def __init__(self, ctx: RunContext, flags: SignalFlags, sd: Any, inhibitor: Any = None) -> None:
        self.ctx = ctx
        self.flags = flags
        self.sd = sd  # platform_adapters.sd_notify.SdNotifier (or a no-op)
        self.inhibitor = inhibitor
        self.stop_requested = False
        self.worker: Any = None
        self.launch_times: list[float] = []
        self.model = ctx.state.model or ctx.settings.model
        self.escalated_at: int | None = None
        self.pending_handoff: str | None = None
        self.prompt_note: str | None = None
        self._last_write = 0.0
        self._last_watchdog = 0.0
        self._last_prompt: str | None = None
        self._alerts: set[tuple[str, str]] = set()
        self._planned_model = self.model  # the model the last worker was asked for
        # A WatchdogSec= shorter than our tick would be missed: tick at least that often.
        self.tick_s = min(TICK_S, getattr(sd, "watchdog_interval_s", None) or TICK_S)
        self.earlier = earlier_records(ctx.paths)  # the runway's fallback: this project's past
        self.slots = WorkerSlots(ctx.settings.max_parallel_workers, registry.state_dir(ctx.environ))

    # ----- the story -------------------------------------------------------------------
    def run(self) -> ExitCode:
        from unattended.platform_adapters.process import ticking

        # Git, --done-when, pricing, the summary: whatever blocks, the tick goes on.
        with ticking(self._tick, self.tick_s):
            try:
                verdict = self._relay()
            except DiskFull as exc:
                verdict = Verdict(VerdictKind.FAILED, f"disk full: {exc}")
            return self._finish(verdict)

    def _relay(self) -> Verdict:
        from unattended.safety.decide import Limits, decide, gate
        from unattended.safety.runway import estimate_next

        while True:
            # Rebuilt every time round: `unattended extend` may have moved a cap.
            limits = Limits.from_settings(self.ctx.settings, self.ctx.state.deadline.timestamp())
            estimate = estimate_next(self.ctx.history, self.earlier)
            if estimate.basis.startswith("default"):
                estimate = None  # no evidence yet: never refuse a run on a guess
            verdict = gate(self._facts(), limits, self.launch_times, estimate)
            if verdict.kind is VerdictKind.WAIT:
                self._wait(verdict)
                continue
            if verdict.terminal:
                return verdict
            if not self._await_worker_slot():
                continue  # a stop arrived while waiting: the gate ends the run
            try:
                record = self._iterate()
            except PromptError as exc:
                return Verdict(VerdictKind.FAILED, f"no prompt for the worker: {exc}")
            finally:
                self.slots.release()
            self._account(record)
            self._budget_alerts()
            verdict = decide(self._facts(done_when=record.done_when_passed), limits)
            self._record(record, verdict)
            if verdict.terminal:
                return verdict
            if verdict.escalate and self.ctx.settings.escalate_model:
                self._escalate(record.number, verdict.reason)
            self.prompt_note = verdict.prompt_note
            if verdict.kind is VerdictKind.WAIT:
                self._wait(verdict)

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
            now=sys_calls.time(),
            cost_usd=st.cost_usd,
            tokens=st.total_tokens,
            stop_requested=self.stop_requested or self.flags.stop_now,
            done_when_passed=done_when,
            escalated_at=self.escalated_at,
            quota=quota,
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
        from unattended.supervisor.worker.process import SpawnError, Worker, WorkerSpec
        from unattended.supervisor.worker.settings_file import (
            hook_command,
            hook_env,
            write_worker_settings,
        )

        ctx, st, s = self.ctx, self.ctx.state, self.ctx.settings
        number = st.iteration + 1
        plan = self._plan(number)
        before = it.git_point(ctx.project, ctx.git_dir, st.run_id, number, "before", s, self._warn)
        settings_file = write_worker_settings(ctx.paths, hook_command(s))
        argv = it.build_argv(s, plan, settings_file)
        env = it.worker_env(
            ctx.environ,
            ctx.project,
            st.run_id,
            number,
            hook_env(s, self._context_window(), ctx.paths),
        )
        ensure_private_dir(ctx.paths.iterations)
        self._cap_raw_logs(number)
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
        started = sys_calls.time()
        self.launch_times.append(started)
        st.iteration = number
        try:
            self.worker = Worker.spawn(spec, should_escalate=lambda: self.flags.escalate)
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
        self._set(RunStatus.RUNNING, worker_pid=self.worker.pid, worker_started_at=started)
        self._log(f"worker started (pid {self.worker.pid}, {mode} session)", number, kind="spawn")
        while not self.worker.finished:
            self.worker.pump(self.tick_s)
            self._tick()
        outcome = self.worker.record()
        self.worker = None
        self.slots.release()  # git evidence and --done-when need no worker slot
        if outcome.disk_full:
            raise DiskFull(f"no space left to write {ctx.paths.iteration_stdout(number).name}")
        ctx.log.machine(
            "worker_exit", number, exit_code=outcome.exit_code, ended_by=outcome.ended_by
        )
        ended = sys_calls.time()
        self._set(RunStatus.WAITING, worker_pid=None, worker_started_at=None)
        after = it.git_point(ctx.project, ctx.git_dir, st.run_id, number, "after", s, self._warn)
        record = it.record_from_worker(number, started, ended, outcome, before, after)
        record.resumed_session = plan.resume_session is not None
        if not record.model:
            record.model = plan.model
        record.commits, record.files_changed = it.count_commits(
            ctx.project, before.head, after.head
        )
        self._usage_without_result(record)
        self._collect_handoff(record)
        record.steps = read_steps(ctx.paths, number)
        record.escalated_model = self.escalated_at is not None
        if s.done_when and record.saw_result:
            record.done_when_passed = it.run_done_when(
                s.done_when, ctx.project, env, abort=lambda: self.flags.stop_now
            )
        return record

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
        from unattended.contracts.cli_versions import in_tested_range, untested_warning
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
        from unattended.safety.decide import Limits, gutter_state

        ctx, st = self.ctx, self.ctx.state
        outcome = verdict.outcome or Outcome.FAILED
        st.last_iteration = records.last_iteration(record, outcome, verdict.reason)
        limits = Limits.from_settings(ctx.settings, st.deadline.timestamp())
        st.gutter = gutter_state(self._facts(), limits)
        self._record_quota(record)
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
        status = RunStatus.WAITING if not verdict.terminal else st.status
        self._set(status)

    def _record_quota(self, record: IterationRecord) -> None:
        window = records.quota_window(record, sys_calls.time())
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
        self._guard_disk(lambda: append_line(self.ctx.paths.telemetry, line))

    def _escalate(self, number: int, reason: str) -> None:
        old, new = self.model or "the default model", self.ctx.settings.escalate_model
        self.model = new
        self.ctx.state.model = new
        self.escalated_at = number
        self._log(f"escalating the worker model from {old} to {new}: {reason}", kind="escalate")

    # ----- the end ---------------------------------------------------------------------
    def _finish(self, verdict: Verdict) -> ExitCode:
        st, paths = self.ctx.state, self.ctx.paths
        status = verdict.kind.status
        st.status = status
        st.stop_reason = verdict.reason
        st.exit_code = int(status.exit_code)
        st.worker_pid = None
        st.resume_at = None
        if hasattr(self.sd, "stopping"):
            self.sd.stopping()
        # On a full disk the old state.json stays intact; the log line below says what happened.
        with contextlib.suppress(DiskFull):
            self._write()
        from unattended.supervisor.run.on_done import deliver_run

        if deliver_run(self.ctx, status, self._log):  # --on-done push|pr: before the notice
            with contextlib.suppress(DiskFull):
                self._write()
        paths.pid.unlink(missing_ok=True)
        paths.stop.unlink(missing_ok=True)
        self._prune(status)
        if self.inhibitor is not None:
            self.inhibitor.release()
        self._log(
            f"run ended {status.value} (exit {st.exit_code}) after {st.iteration} iteration(s), "
            f"${st.cost_usd:.2f}: {verdict.reason}",
            kind="end",
            status=status.value,
            exit_code=st.exit_code,
        )
        self._notify(status.value, verdict.reason, self._summary())
        return status.exit_code
