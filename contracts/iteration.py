"""One iteration, as data: the facts the supervisor gathered, handed to ``safety`` to decide.

Nothing here is the worker's opinion except ``result_text``, which only the marker rules read
(and only as the final result, never tool output).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unattended.contracts.timefmt import UtcDatetime


class GitPoint(BaseModel):
    """Git evidence at one instant: HEAD and the hash of the whole work tree's content."""

    model_config = ConfigDict(frozen=True)

    head: str | None = None
    tree: str | None = None


class RateLimitSeen(BaseModel):
    status: str | None = None
    resets_at: float | None = None  # epoch seconds
    limit_type: str | None = None
    utilization: float | None = None


class IterationRecord(BaseModel):
    """Everything observed about one worker, from spawn to reaped."""

    number: int
    started_at: UtcDatetime
    ended_at: UtcDatetime
    duration_s: float
    # How the process ended.
    spawn_error: str | None = None  # the worker could not be started at all
    exit_code: int | None = None  # negative: killed by that signal
    # None (exited by itself), "timeout", "stall", "stop", "api_error" (an api_retry event
    # named an error that retries cannot heal: authentication, permission, invalid request)
    ended_by: str | None = None
    last_stderr_line: str | None = None
    # What the stream said.
    saw_result: bool = False
    result_subtype: str | None = None
    is_error: bool = False
    api_error_status: int | None = None
    terminal_reason: str | None = None
    result_text: str | None = Field(default=None, exclude=True)  # in memory only: worker content
    # The texts of every clean result that names a marker (one process may print several).
    marker_texts: list[str] = Field(default_factory=list, exclude=True)
    results: int = 0  # result events the worker printed
    tool_calls: int = 0
    permission_denials: list[str] = Field(default_factory=list)
    api_retries: int = 0
    last_api_retry_status: int | None = None
    last_api_retry_error: str | None = None  # "authentication_failed", "rate_limit", …
    rate_limit: RateLimitSeen | None = None
    session_id: str | None = None
    model: str | None = None
    num_turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    # Token fields are sums over every model of the worker (``tokens_by_model``).
    tokens_by_model: dict[str, dict[str, int]] = Field(default_factory=dict)
    cost_usd_cli: float | None = None  # as the CLI reported it; None when it said nothing
    cost_usd_priced: float | None = None  # the published prices applied to tokens_by_model
    cost_usd: float = 0.0  # the larger of the two: what caps, runway and reports count
    usage_source: str = "result"  # "result", "transcript" (killed before result), "none"
    usage_basis: str | None = None  # how this iteration's share was found (accounting.py)
    # The session's cumulative figures after this worker, as the CLI printed them: the next
    # resumed iteration's baseline (accounting.SessionFigures). In memory only.
    session_figures: Any = Field(default=None, exclude=True)
    usage_tally: Any = Field(default=None, exclude=True)  # accounting.ResultTally
    cli_version: str | None = None  # from the stream's init event
    compactions: int = 0  # the CLI compacted the conversation by itself (a defect signal)
    compact_pre_tokens: int | None = None
    context_peak_tokens: int = 0
    context_window: int | None = None
    # Git evidence gathered by the supervisor.
    git_before: GitPoint = Field(default_factory=GitPoint)
    git_after: GitPoint = Field(default_factory=GitPoint)
    commits: int = 0
    files_changed: int = 0
    done_when_passed: bool | None = None  # None: no --done-when command
    handed_off: bool = False
    resumed_session: bool = False
    steps: list[dict] = Field(default_factory=list)  # from `unattended step`
    escalated_model: bool = False

    @property
    def made_progress(self) -> bool:
        """Progress is what git shows: a new HEAD or different work-tree content."""
        before, after = self.git_before, self.git_after
        return before.head != after.head or before.tree != after.tree

    @property
    def tokens(self) -> int:
        """Billable tokens for caps: input + output + cache creation (cache reads separate)."""
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens
