"""``.unattended/telemetry.jsonl``: one line per iteration, append-only."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from unattended.contracts.status import Outcome
from unattended.contracts.timefmt import RunId, UtcDatetime

TELEMETRY_SCHEMA_VERSION = 1


class StepRecord(BaseModel):
    """One `unattended step --complete N` call, as the iteration's record keeps it."""

    model_config = ConfigDict(extra="ignore")

    step: int
    desc: str = ""
    status: str = "OK"


class TelemetryLine(BaseModel):
    schema_version: int = TELEMETRY_SCHEMA_VERSION
    time: UtcDatetime
    run_id: RunId
    iteration: int
    model: str | None = None
    duration_s: float
    exit_code: int | None = None
    outcome: Outcome
    reason: str | None = None
    # Sums over every model of the worker (Haiku side calls and subagents included).
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    # The larger of cost_usd_cli and cost_usd_priced: what caps, runway and reports count.
    total_cost_usd: float = 0.0
    cost_usd_cli: float | None = None  # the CLI's own figure for this iteration's share
    cost_usd_priced: float | None = None  # published prices applied to tokens_by_model
    tokens_by_model: dict[str, dict[str, int]] = {}  # the token fields above, per model
    usage_source: str = "result"
    usage_basis: str | None = None  # since_last_result, process, session_delta, usage, transcript
    results: int = 0  # result events the worker printed (several when a background task ends)
    cli_version: str | None = None
    compactions: int = 0  # the CLI compacted the context by itself: the bands acted too late
    compact_pre_tokens: int | None = None
    num_turns: int = 0
    tool_calls: int = 0
    context_peak_tokens: int = 0
    context_window: int | None = None
    context_pct: float | None = None
    context_band: str | None = None  # normal, warn, stop
    head_before: str | None = None
    head_after: str | None = None
    commits: int = 0
    files_changed: int = 0
    handed_off: bool = False
    resumed_session: bool = False
    session_policy: str | None = None
    permission_denials: list[str] = []
    steps: list[StepRecord] = []  # `unattended step` calls the worker made, oldest first
    escalated_model: bool = False  # this iteration ran on the escalation model
