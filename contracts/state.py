"""``.unattended/state.json``: the run's single source of truth, rewritten atomically.

Readers reject versions they cannot read with a clear error (``StateFileError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from unattended.contracts.status import Outcome, RunStatus
from unattended.contracts.timefmt import UtcDatetime
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


class RunState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
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
    # Running totals from the workers' result events (transcripts for killed workers).
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    last_iteration: LastIteration | None = None
    gutter: GutterState = Field(default_factory=GutterState)
    model: str | None = None
    session_id: str | None = None
    inhibitor: str | None = None
    quota: dict[str, QuotaWindow] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    settings_sources: dict[str, str] = Field(default_factory=dict)
    resumed_count: int = 0
    applied_requests: list[str] = Field(default_factory=list)  # newest `extend` ids applied

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def parse_state(text: str, path: Path) -> RunState:
    """Parse state.json text, turning every failure into one clear ``StateFileError``."""
    return parse_versioned(RunState, text, path, SCHEMA_VERSION, StateFileError)
