"""Turning one iteration's record into the files people and tools read: the telemetry line,
the quota window seen, the last-iteration summary. Pure conversions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from unattended.contracts.iteration import IterationRecord
from unattended.contracts.settings import Settings
from unattended.contracts.state import LastIteration, QuotaWindow
from unattended.contracts.status import Outcome
from unattended.contracts.telemetry import TelemetryLine


def quota_window(record: IterationRecord, now: float) -> tuple[str, QuotaWindow] | None:
    """The subscription window a worker's rate_limit_event reported, if any."""
    rl = record.rate_limit
    if rl is None or not rl.limit_type:
        return None
    resets = datetime.fromtimestamp(rl.resets_at, UTC) if rl.resets_at else None
    window = QuotaWindow(
        status=rl.status,
        resets_at=resets,
        utilization=rl.utilization,
        seen_at=datetime.fromtimestamp(now, UTC),
    )
    return rl.limit_type, window


def last_iteration(record: IterationRecord, outcome: Outcome, reason: str) -> LastIteration:
    """state.json's summary of the latest iteration; ``error`` is one line, never a transcript."""
    error = record.spawn_error or (record.result_text if record.is_error else None)
    error = error or (record.last_stderr_line if not record.saw_result else None)
    return LastIteration(
        number=record.number,
        outcome=outcome,
        exit_code=record.exit_code,
        duration_s=record.duration_s,
        error=(error or None) and error.strip().splitlines()[-1][:300],
        reason=reason,
        ended_at=record.ended_at,
    )


def telemetry_line(
    record: IterationRecord,
    outcome: Outcome,
    reason: str,
    run_id: str,
    settings: Settings,
    window: int,
    compact_at: int | None = None,
) -> TelemetryLine:
    """``compact_at``: where the worker's CLI compacts by itself; the bands act before it."""
    from unattended.contracts.context_window import bands_before_compaction
    from unattended.safety.bands import context_band

    warn, stop = bands_before_compaction(
        window, settings.context_warn_pct, settings.context_stop_pct, compact_at
    )
    pct = round(100.0 * record.context_peak_tokens / window, 1) if window else None
    return TelemetryLine(
        time=record.ended_at,
        run_id=run_id,
        iteration=record.number,
        model=record.model,
        duration_s=record.duration_s,
        exit_code=record.exit_code,
        outcome=outcome,
        reason=reason,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_creation_tokens=record.cache_creation_tokens,
        cache_read_tokens=record.cache_read_tokens,
        total_cost_usd=record.cost_usd,
        cost_usd_cli=record.cost_usd_cli,
        cost_usd_priced=record.cost_usd_priced,
        tokens_by_model=record.tokens_by_model,
        usage_source=record.usage_source if record.saw_result else "transcript",
        usage_basis=record.usage_basis,
        results=record.results,
        cli_version=record.cli_version,
        compactions=record.compactions,
        compact_pre_tokens=record.compact_pre_tokens,
        num_turns=record.num_turns,
        tool_calls=record.tool_calls,
        context_peak_tokens=record.context_peak_tokens,
        context_window=window,
        context_pct=pct,
        context_band=context_band(record.context_peak_tokens, window, warn, stop),
        head_before=record.git_before.head,
        head_after=record.git_after.head,
        commits=record.commits,
        files_changed=record.files_changed,
        handed_off=record.handed_off,
        resumed_session=record.resumed_session,
        session_policy=settings.session_policy,
        permission_denials=record.permission_denials,
        steps=record.steps,
        escalated_model=record.escalated_model,
    )
