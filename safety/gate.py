"""Before a spawn: may the next worker start now? (issue 4 storm breaker, issue 6 §2 runway
and §5 quota pacing). *Never start work you can't complete*, and never launch in a storm.

Order in :func:`gate` (the first that applies wins): stop requested → iteration/hours/cost/token
caps → runway (cost and tokens from any estimate; hours only from a ``high``-confidence one, so
a default guess cannot end a young run; from 90 % of a cost or token cap the default estimate
counts too, so the 95 % stop level is a gate, not only a check after the fact) → quota pacing →
storm breaker → CONTINUE.
"""

from __future__ import annotations

from collections.abc import Sequence

from unattended.safety.backoff import (
    UNKNOWN_RESET_WAIT_S,
    storm_wait_until,
    utilization_pct,
    wait_or_cap,
)
from unattended.safety.budget import CRITICAL_PCT
from unattended.safety.limits import Limits, RunFacts, caps, iterations_used
from unattended.safety.runway import RunwayEstimate, estimate_next
from unattended.safety.verdict import Verdict, VerdictKind
from unattended.safety.wording import span, when


def runway_cap(facts: RunFacts, limits: Limits, estimate: RunwayEstimate) -> Verdict | None:
    """CAPPED when the predicted next iteration would cross a cap, saying what it needs and
    what is left ("next iteration needs ~$0.42, $0.30 left"), else None."""
    if limits.max_cost_usd is not None:
        left = limits.max_cost_usd - facts.cost_usd
        if estimate.cost_usd > left:
            return Verdict(
                VerdictKind.CAPPED,
                f"cost cap: next iteration needs ~${estimate.cost_usd:.2f}, "
                f"${max(0.0, left):.2f} left ({estimate.basis})",
            )
    if limits.max_tokens is not None:
        left_tokens = limits.max_tokens - facts.tokens
        if estimate.tokens > left_tokens:
            return Verdict(
                VerdictKind.CAPPED,
                f"token cap: next iteration needs ~{estimate.tokens:,} tokens, "
                f"{max(0, left_tokens):,} left ({estimate.basis})",
            )
    if estimate.confidence == "high" and facts.now + estimate.duration_s > limits.deadline:
        return Verdict(
            VerdictKind.CAPPED,
            f"hours cap: next iteration needs ~{span(estimate.duration_s)}, "
            f"{span(limits.deadline - facts.now)} left before the deadline "
            f"{when(limits.deadline)} ({estimate.basis})",
        )
    return None


def near_a_cap(facts: RunFacts, limits: Limits) -> bool:
    """At 90 % (critical) or more of the cost or token cap."""
    for used, cap in ((facts.cost_usd, limits.max_cost_usd), (facts.tokens, limits.max_tokens)):
        if cap is not None and cap > 0 and round(used / cap * 100, 9) >= CRITICAL_PCT:
            return True
    return False


def quota_wait(facts: RunFacts, limits: Limits) -> Verdict | None:
    """With ``max_quota_pct`` set: WAIT for the reset of the latest-resetting window whose
    reported utilization is at or above it (plus the clock-skew margin), else None.

    A window whose reset has already passed is ignored (its reading is stale); a window at the
    limit with no reset time waits ``UNKNOWN_RESET_WAIT_S`` and asks again.
    """
    if limits.max_quota_pct is None:
        return None
    worst: tuple[float, str, float, bool] | None = None  # (until, window, pct, reset known)
    for window, (utilization, resets_at) in sorted(facts.quota.items()):
        if utilization is None:
            continue
        pct = utilization_pct(utilization)
        if pct < limits.max_quota_pct:
            continue
        if resets_at is not None and resets_at <= facts.now:
            continue
        known = resets_at is not None
        until = (
            resets_at + limits.limit_margin_s
            if resets_at is not None
            else facts.now + UNKNOWN_RESET_WAIT_S
        )
        if worst is None or until > worst[0]:
            worst = (until, window, pct, known)
    if worst is None:
        return None
    until, window, pct, known = worst
    reset = f"its reset at {when(until - limits.limit_margin_s)}" if known else "an unknown reset"
    return wait_or_cap(
        until,
        f"quota pacing: {window} window at {pct:.0f}% (max {limits.max_quota_pct:g}%), "
        f"waiting for {reset}",
        limits,
        None,
    )


def gate(
    facts: RunFacts,
    limits: Limits,
    launch_times: Sequence[float],
    estimate: RunwayEstimate | None,
) -> Verdict:
    """May the next worker be spawned now? (order in the module doc)."""
    if facts.stop_requested:
        return Verdict(VerdictKind.STOPPED, "stop requested")
    capped = caps(facts, limits, None)
    if capped is not None:
        return capped
    if estimate is None and near_a_cap(facts, limits):
        # From 90 % the 95 % stop level is a gate: without evidence yet, the conservative
        # default estimate decides (an iteration projected past 100 % is not started).
        estimate = estimate_next((), ())
    if estimate is not None:
        short = runway_cap(facts, limits, estimate)
        if short is not None:
            return short
    paced = quota_wait(facts, limits)
    if paced is not None:
        return paced
    slot = storm_wait_until(facts.now, launch_times, limits.max_launches_per_minute)
    if slot is not None:
        return wait_or_cap(
            slot,
            f"storm breaker: {limits.max_launches_per_minute} launches in the last minute, "
            f"next at {when(slot)}",
            limits,
            None,
        )
    return Verdict(VerdictKind.CONTINUE, f"launching iteration {iterations_used(facts) + 1}")
