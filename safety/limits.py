"""The run's caps (:class:`Limits`), the facts every rule reads (:class:`RunFacts`), and the cap
check that comes before anything else: once a cap is reached, nothing may continue.

Both classes are plain frozen dataclasses so the rules stay pure: the loop reads the clock once
and passes ``now`` in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from unattended.contracts.iteration import IterationRecord
from unattended.contracts.status import Outcome
from unattended.safety.budget import alert_level
from unattended.safety.verdict import Verdict, VerdictKind
from unattended.safety.wording import when

if TYPE_CHECKING:
    from unattended.contracts.settings import Settings
    from unattended.safety.gutter import Streaks


@dataclass(frozen=True)
class Limits:
    deadline: float  # epoch seconds (wall clock)
    max_iterations: int
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    gutter_iterations: int = 5
    crash_backoff_s: float = 5.0
    on_limit: str = "wait"
    api_backoff_s: float = 30.0
    limit_margin_s: float = 120.0
    max_launches_per_minute: int = 6
    escalate_after: int | None = None  # None: no escalation (no stronger model configured)
    max_quota_pct: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings, deadline: float) -> Limits:
        """The caps of a run from its saved settings; ``deadline`` is the wall-clock instant.

        Escalation needs a model to escalate to: without ``escalate_model`` the verdicts never
        ask for it (and never claim in run.log that they did).
        """
        return cls(
            deadline=deadline,
            max_iterations=settings.max_iterations,
            max_cost_usd=settings.max_cost_usd,
            max_tokens=settings.max_tokens,
            gutter_iterations=settings.gutter_iterations,
            crash_backoff_s=settings.crash_backoff_s,
            on_limit=settings.on_limit,
            api_backoff_s=settings.api_backoff_s,
            limit_margin_s=settings.limit_margin_s,
            max_launches_per_minute=settings.max_launches_per_minute,
            escalate_after=settings.escalate_after if settings.escalate_model else None,
            max_quota_pct=settings.max_quota_pct,
        )


@dataclass(frozen=True)
class RunFacts:
    # This run's iterations, oldest first: the loop passes a bounded window of the newest.
    history: tuple[IterationRecord, ...]
    now: float  # wall clock epoch, read once by the loop
    cost_usd: float  # run totals (including the last iteration)
    tokens: int
    stop_requested: bool = False
    done_when_passed: bool | None = None  # for the LAST iteration
    # Number of the last iteration run with the old model (the one whose verdict escalated);
    # the gutter counts only iterations after it.
    escalated_at: int | None = None
    # window -> (utilization, resets_at epoch). Utilization is a fraction (1.0 = the whole
    # window, as the Agent SDK documents it); see ``safety.backoff.utilization_pct``.
    quota: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    # The gutter's running streaks including the last iteration (None: read from ``history``).
    streaks: Streaks | None = None
    launched: int = 0  # workers launched in this run, crashed daemons' included


def iterations_used(facts: RunFacts) -> int:
    """Workers launched so far in this run (a resumed run's numbering counts too)."""
    if not facts.history:
        return facts.launched
    return max(facts.launched, facts.history[-1].number, len(facts.history))


def caps(facts: RunFacts, limits: Limits, outcome: Outcome | None) -> Verdict | None:
    """CAPPED naming the cap when iterations, hours, cost or tokens are used up, else None.

    Iterations and hours end the run when reached; cost and tokens at the 95 % ``stop`` level
    of their alert scale (issue 6 §2), so the last iteration's overshoot stays inside the cap.
    """
    used = iterations_used(facts)
    if used >= limits.max_iterations:
        return Verdict(
            VerdictKind.CAPPED,
            f"iteration cap: {used} of {limits.max_iterations} iterations used",
            outcome,
        )
    if facts.now >= limits.deadline:
        return Verdict(
            VerdictKind.CAPPED, f"hours cap: deadline {when(limits.deadline)} reached", outcome
        )
    if limits.max_cost_usd is not None and alert_level(facts.cost_usd, limits.max_cost_usd) == (
        "stop"
    ):
        cap = limits.max_cost_usd
        return Verdict(
            VerdictKind.CAPPED,
            f"cost cap: ${facts.cost_usd:.2f} of ${cap:.2f} spent "
            f"({facts.cost_usd / cap * 100:.0f}%, the run stops at 95%)",
            outcome,
        )
    if limits.max_tokens is not None and alert_level(facts.tokens, limits.max_tokens) == "stop":
        cap_tokens = limits.max_tokens
        return Verdict(
            VerdictKind.CAPPED,
            f"token cap: {facts.tokens:,} of {cap_tokens:,} tokens used "
            f"({facts.tokens / cap_tokens * 100:.0f}%, the run stops at 95%)",
            outcome,
        )
    return None
