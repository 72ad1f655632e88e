"""``.unattended/state.json``: the run's single source of truth, rewritten atomically.

Readers reject versions they cannot read with a clear error (``StateFileError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from unattended.contracts.status import Outcome, RunStatus
from unattended.contracts.timefmt import RunId, UtcDatetime
from unattended.contracts.versioned import parse_versioned

SCHEMA_VERSION = 1


class StateFileError(Exception):
    """state.json exists but cannot be read: corrupt, or written by another version."""


class LastIteration(BaseModel):
    number: int
    outcome: Outcome
    exit_code: int | None = None
    duration_s: float = 0.0
    error: str | None = None
    reason: str | None = None
    ended_at: UtcDatetime | None = None  # for unattended_last_iteration_timestamp_seconds


class GutterSeen(BaseModel):
    """One recent iteration of the no-progress streak, as the gutter's wording needs it."""

    number: int
    reason: str
    head: str | None = None
    error: str | None = None


class GutterState(BaseModel):
    """The gutter's running streaks (``safety.gutter.Streaks``): the counters people read, and
    what a resumed run needs to go on counting without re-reading the whole history."""

    no_progress: int = 0
    same_failure: int = 0
    crashes: int = 0
    denials: int = 0
    reason: str | None = None
    waits: int = 0  # trailing iterations that ended on service trouble
    fingerprint: str | None = None
    denied: list[str] = Field(default_factory=list)
    denial_sets: list[list[str]] = Field(default_factory=list)
    recent: list[GutterSeen] = Field(default_factory=list)  # newest first, at most 3


class QuotaWindow(BaseModel):
    status: str | None = None
    resets_at: UtcDatetime | None = None
    utilization: float | None = None
    seen_at: UtcDatetime | None = None


class SeenProcess(BaseModel):
    """A process of the run's tree (the worker, its tools, a helper) alive when last looked at.
    A daemon killed -9 leaves the list behind: ``status`` names the ones still alive and the
    next ``start`` ends them, if they are provably the run's (``proctree.is_ours``)."""

    pid: int
    create_time: float  # psutil create_time: a reused PID has another


class RunState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: RunId
    status: RunStatus
    pid: int | None = None
    pid_create_time: float | None = None  # psutil create_time: tells the daemon from PID reuse
    project: str
    started_at: UtcDatetime
    updated_at: UtcDatetime
    deadline: UtcDatetime
    iteration: int = 0
    max_iterations: int
    worker_pid: int | None = None
    worker_started_at: UtcDatetime | None = None
    stop_reason: str | None = None
    exit_code: int | None = None
    resume_at: UtcDatetime | None = None
    # Running totals from the workers' result events (transcripts for killed workers); tokens
    # are summed over every model a worker used.
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0  # per iteration the larger of the CLI's figure and the published price
    cost_usd_cli: float = 0.0  # the CLI's own figures, summed (transcript-priced workers: 0)
    cost_usd_priced: float = 0.0  # the published prices, summed
    cli_version: str | None = None  # the Claude Code CLI the last worker ran (its init event)
    last_iteration: LastIteration | None = None
    gutter: GutterState = Field(default_factory=GutterState)
    model: str | None = None
    session_id: str | None = None
    inhibitor: str | None = None
    descendants: list[SeenProcess] = Field(default_factory=list)
    quota: dict[str, QuotaWindow] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    settings_sources: dict[str, str] = Field(default_factory=dict)
    resumed_count: int = 0
    # What --on-done did at the end (issue 15): "origin/night-work", the PR/MR URL, or why not.
    pushed_ref: str | None = None
    pr_url: str | None = None
    on_done_error: str | None = None
    unattended_version: str | None = None  # the daemon's; None in states written before 0.1.0
    applied_requests: list[str] = Field(default_factory=list)  # newest `extend` ids applied

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens

    def on_done_lines(self) -> list[str]:
        """What --on-done did, for the report and the final notification."""
        lines = [f"pushed: {self.pushed_ref}"] if self.pushed_ref else []
        if self.pr_url:
            lines.append(f"pull request: {self.pr_url}")
        if self.on_done_error:
            lines.append(self.on_done_error)
        return lines

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


# What to do about an unreadable state.json, said by every command that refuses one.
STATE_HINT = (
    "move it aside, or `unattended start` (without --resume) archives it under "
    ".unattended/runs/ and begins a new run"
)


def parse_state(data: str | bytes, path: Path) -> RunState:
    """Parse state.json, turning every failure into one clear ``StateFileError``."""
    return parse_versioned(RunState, data, path, SCHEMA_VERSION, StateFileError, STATE_HINT)
