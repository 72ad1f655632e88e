"""Run settings: one model for the CLI options, ``unattended.toml`` and the saved run.

Precedence is CLI > environment > ``unattended.toml`` > user config > default; the resolver in
``supervisor.config`` records where each value came from. Unknown keys are errors so a typo in
``unattended.toml`` cannot silently leave a cap unset.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from unattended.contracts.setting_help import STAGGER_HELP

PERMISSION_MODES = ("acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "plan")
DEFAULT_PROTECTED_BRANCHES = ("main", "master", "develop", "trunk")
SETTINGS_FILE = "unattended.toml"
# Run endings that `on_done_also` may add to `done` for a push / pull request.
ON_DONE_ALSO = ("capped", "stuck", "blocked")


# Sane ranges: a value outside them is a typo or an attack, never a wish (``--hours inf`` or
# ``1e10`` once passed validation and killed the daemon when it computed the deadline).
DAY_S = 86400.0
MAX_HOURS = 24.0 * 366  # a run of a year at most
MAX_ITERATIONS = 1_000_000
MAX_COST_USD = 1_000_000.0
MAX_TOKENS = 10**12
MAX_CONTEXT_WINDOW = 100_000_000
MAX_LOG_MB = 1024.0 * 1024  # 1 TiB


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    # relay loop (issue 3)
    hours: float = Field(24.0, gt=0, le=MAX_HOURS)
    max_iterations: int = Field(200, ge=1, le=MAX_ITERATIONS)
    prompt: str | None = None
    prompt_file: str | None = None
    worker_timeout: float = Field(3600.0, gt=0, le=7 * DAY_S)
    stall_timeout: float = Field(900.0, gt=0, le=7 * DAY_S)
    claude_bin: str = "claude"
    model: str | None = None
    permission_mode: str | None = None
    allowed_tools: str | None = None
    done_when: str | None = None
    grace_seconds: float = Field(10.0, ge=0, le=3600)
    # Within this many seconds of the deadline the context-meter hook tells the worker, once, to
    # commit and finish; at the deadline the daemon ends it (0: no warning).
    deadline_warn_s: float = Field(600.0, ge=0, le=DAY_S)

    # safety rails (issue 4)
    branch: str | None = None
    protected_branches: list[str] = Field(default_factory=list)
    allow_dirty: bool = False
    dirty_whitelist: list[str] = Field(default_factory=lambda: ["PROMPT.md", "unattended.toml"])
    # Ignored files force-added to every snapshot: none unless the user opts in, since
    # refs/unattended/* then hold them (secrets, often) and mirrors and bundles carry them.
    snapshot_ignored: list[str] = Field(default_factory=list)
    gutter_iterations: int = Field(5, ge=1, le=10_000)
    crash_backoff_s: float = Field(5.0, ge=0, le=DAY_S)
    max_launches_per_minute: int = Field(6, ge=1, le=1000)
    on_limit: Literal["wait", "stop"] = "wait"
    api_backoff_s: float = Field(30.0, ge=0, le=DAY_S)
    limit_margin_s: float = Field(120.0, ge=0, le=DAY_S)
    max_iteration_log_mb: float = Field(200.0, gt=0, le=MAX_LOG_MB)
    # every raw worker log of every run, together
    max_logs_mb: float = Field(2000.0, gt=0, le=100 * MAX_LOG_MB)
    keep_runs: int = Field(10, ge=1, le=10_000)

    # platform (issue 5)
    notify_cmd: str | None = None

    # budgets (issue 6)
    max_cost_usd: float | None = Field(None, gt=0, le=MAX_COST_USD)
    max_tokens: int | None = Field(None, gt=0, le=MAX_TOKENS)
    context_warn_pct: float = Field(70.0, gt=0, lt=100)
    context_stop_pct: float = Field(85.0, gt=0, le=100)
    context_window: int | None = Field(None, gt=0, le=MAX_CONTEXT_WINDOW)
    context_source: Literal["transcript", "api"] = "transcript"
    session_policy: Literal["auto", "fresh", "continue"] = "auto"
    escalate_model: str | None = None
    escalate_after: int | None = Field(None, ge=1, le=10_000)
    max_quota_pct: float | None = Field(None, gt=0, le=100)

    # many runs (issue 7)
    max_parallel_workers: int | None = Field(None, ge=1, le=1000)
    start_stagger_s: float = Field(3.0, ge=0, le=600, description=STAGGER_HELP)

    # the night's work leaves the machine (issue 15)
    on_done: Literal["print", "push", "pr"] = "print"
    on_done_also: list[str] = Field(default_factory=list)
    remote: str | None = None  # None: the branch's upstream remote, else origin
    forge: Literal["github", "gitlab"] | None = None  # None: from the remote's URL
    metrics_textfile: str | None = None  # node_exporter's textfile collector reads *.prom

    @field_validator("on_done_also", mode="before")
    @classmethod
    def _split_on_done_also(cls, value: object) -> object:
        """`--on-done-also capped,stuck` on the command line, a list in unattended.toml."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            unknown = [v for v in value if v not in ON_DONE_ALSO]
            if unknown:
                allowed, given = ", ".join(ON_DONE_ALSO), ", ".join(map(str, unknown))
                raise ValueError(f"on_done_also takes {allowed}, not {given}")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.permission_mode is not None and self.permission_mode not in PERMISSION_MODES:
            raise ValueError(
                f"permission_mode must be one of {', '.join(PERMISSION_MODES)}, "
                f"not {self.permission_mode!r}"
            )
        if self.context_warn_pct >= self.context_stop_pct:
            raise ValueError("context_warn_pct must be below context_stop_pct")
        if self.escalate_after is not None and self.escalate_after >= self.gutter_iterations:
            raise ValueError("escalate_after must be smaller than gutter_iterations")
        if self.metrics_textfile is not None and not self.metrics_textfile.endswith(".prom"):
            raise ValueError("metrics_textfile must end in .prom (node_exporter reads only those)")
        if self.prompt is not None and self.prompt_file is not None:
            raise ValueError("give either prompt or prompt_file, not both")
        return self

    def effective_permission_mode(self) -> str:
        """bypassPermissions unless the user chose; --allowed-tools alone means 'default'.

        In -p mode the CLI's default and acceptEdits modes silently deny Bash, so a run would
        "succeed" having done nothing.
        """
        if self.permission_mode is not None:
            return self.permission_mode
        return "default" if self.allowed_tools else "bypassPermissions"

    def all_protected_branches(self) -> list[str]:
        return list(dict.fromkeys([*DEFAULT_PROTECTED_BRANCHES, *self.protected_branches]))


# Settings that are about one invocation, not the run, and so never come from a file.
INVOCATION_ONLY = ("project", "foreground", "dry_run", "json", "resume")
