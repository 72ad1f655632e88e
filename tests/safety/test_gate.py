"""Before a spawn: gate() — caps, runway, quota pacing, storm breaker (issues 4 and 6)."""

from __future__ import annotations

from tests.safety.records import HOUR, T0, facts, limits, rec, renumber
from unattended.safety.backoff import storm_wait_until, utilization_pct
from unattended.safety.decide import gate
from unattended.safety.runway import RunwayEstimate
from unattended.safety.verdict import VerdictKind

CONTINUE, WAIT, CAPPED = VerdictKind.CONTINUE, VerdictKind.WAIT, VerdictKind.CAPPED


def estimate(
    cost: float = 0.42, tokens: int = 40_000, duration: float = 600.0, confidence: str = "high"
) -> RunwayEstimate:
    return RunwayEstimate(tokens, cost, duration, confidence, "upper quartile of the last 3")  # type: ignore[arg-type]


def test_first_launch_continues() -> None:
    verdict = gate(facts(), limits(), [], None)
    assert verdict.kind is CONTINUE and verdict.reason == "launching iteration 1"
    history = renumber([rec(progress=True)] * 3)
    assert gate(facts(history), limits(), [], None).reason == "launching iteration 4"


def test_stop_and_caps_come_first() -> None:
    assert gate(facts(stop_requested=True), limits(), [], None).kind is VerdictKind.STOPPED
    assert gate(facts(now=T0 + 24 * HOUR), limits(), [], None).kind is CAPPED
    history = renumber([rec(progress=True)] * 2)
    verdict = gate(facts(history), limits(max_iterations=2), [], None)
    assert verdict.kind is CAPPED and verdict.reason.startswith("iteration cap")
    verdict = gate(facts(cost=9.6), limits(max_cost_usd=10.0), [], None)
    assert verdict.kind is CAPPED and verdict.reason.startswith("cost cap: $9.60 of $10.00")


# --- runway ------------------------------------------------------------------------------------


def test_runway_refuses_when_the_next_iteration_would_cross_the_cost_cap() -> None:
    verdict = gate(facts(cost=0.70), limits(max_cost_usd=1.0), [], estimate(cost=0.42))
    assert verdict.kind is CAPPED
    assert verdict.reason.startswith("cost cap: next iteration needs ~$0.42, $0.30 left")
    assert verdict.kind.status.exit_code == 3


def test_runway_allows_what_fits() -> None:
    assert gate(facts(cost=0.58), limits(max_cost_usd=1.0), [], estimate(cost=0.42)).kind is (
        CONTINUE
    )


def test_runway_token_cap() -> None:
    verdict = gate(facts(tokens=930_000), limits(max_tokens=1_000_000), [], estimate(tokens=80_000))
    assert verdict.kind is CAPPED
    assert verdict.reason.startswith("token cap: next iteration needs ~80,000 tokens, 70,000 left")


def test_runway_hours_only_from_a_confident_estimate() -> None:
    late = facts(now=T0 + 24 * HOUR - 300)
    verdict = gate(late, limits(), [], estimate(duration=600))
    assert verdict.kind is CAPPED
    assert verdict.reason.startswith("hours cap: next iteration needs ~10 min, 5 min left")
    assert gate(late, limits(), [], estimate(duration=600, confidence="medium")).kind is CONTINUE
    assert gate(late, limits(), [], estimate(duration=200)).kind is CONTINUE


def test_no_cap_no_runway_refusal() -> None:
    assert gate(facts(cost=1e6), limits(), [], estimate(cost=1e6)).kind is CONTINUE


# --- quota pacing (issue 6 §5) -----------------------------------------------------------------


def test_quota_at_or_above_max_waits_for_the_windows_reset() -> None:
    quota = {"five_hour": (0.85, T0 + HOUR)}
    verdict = gate(facts(quota=quota), limits(max_quota_pct=80), [], None)
    assert verdict.kind is WAIT
    assert verdict.wait_until == T0 + HOUR + 120
    assert verdict.reason == (
        "quota pacing: five_hour window at 85% (max 80%), waiting for its reset at "
        "2030-03-17T18:46:40Z"
    )
    exactly = gate(facts(quota={"five_hour": (0.8, T0 + HOUR)}), limits(max_quota_pct=80), [], None)
    assert exactly.kind is WAIT


def test_quota_below_max_or_setting_off_launches() -> None:
    quota = {"five_hour": (0.79, T0 + HOUR)}
    assert gate(facts(quota=quota), limits(max_quota_pct=80), [], None).kind is CONTINUE
    full = {"five_hour": (1.0, T0 + HOUR)}
    assert gate(facts(quota=full), limits(), [], None).kind is CONTINUE


def test_quota_waits_for_the_latest_reset_of_the_full_windows() -> None:
    quota = {
        "five_hour": (0.9, T0 + HOUR),
        "seven_day": (0.95, T0 + 3 * HOUR),
        "seven_day_opus": (0.1, T0 + 9 * HOUR),
    }
    verdict = gate(facts(quota=quota), limits(max_quota_pct=90), [], None)
    assert verdict.wait_until == T0 + 3 * HOUR + 120 and "seven_day window" in verdict.reason


def test_quota_without_utilization_or_with_a_past_reset_cannot_act() -> None:
    lim = limits(max_quota_pct=50)
    assert gate(facts(quota={"five_hour": (None, T0 + HOUR)}), lim, [], None).kind is CONTINUE
    assert gate(facts(quota={"five_hour": (0.99, T0 - 1)}), lim, [], None).kind is CONTINUE


def test_quota_with_unknown_reset_waits_and_asks_again() -> None:
    verdict = gate(facts(quota={"seven_day": (0.99, None)}), limits(max_quota_pct=50), [], None)
    assert verdict.kind is WAIT and verdict.wait_until == T0 + 900
    assert "an unknown reset" in verdict.reason


def test_quota_reset_after_the_deadline_caps() -> None:
    quota = {"seven_day": (0.99, T0 + 48 * HOUR)}
    verdict = gate(facts(quota=quota), limits(max_quota_pct=50), [], None)
    assert verdict.kind is CAPPED and "would pass the deadline" in verdict.reason


def test_utilization_is_a_fraction_even_over_the_limit() -> None:
    assert utilization_pct(0.5) == 50
    assert utilization_pct(1.0) == 100
    assert utilization_pct(1.05) == 105  # over the limit, not 1.05 %
    assert utilization_pct(85.0) == 85  # a percent, should a source ever send one


# --- storm breaker -----------------------------------------------------------------------------


def test_storm_breaker_allows_six_launches_a_minute() -> None:
    now = T0
    launches = [now - 50 + i for i in range(5)]
    assert storm_wait_until(now, launches, 6) is None
    launches.append(now - 1)
    assert storm_wait_until(now, launches, 6) == now - 50 + 60
    verdict = gate(facts(now=now), limits(), launches, None)
    assert verdict.kind is WAIT and verdict.wait_until == now + 10
    assert verdict.reason.startswith("storm breaker: 6 launches in the last minute, next at")


def test_storm_breaker_forgets_launches_older_than_a_minute() -> None:
    launches = [T0 - 60 - i for i in range(20)]
    assert storm_wait_until(T0, launches, 6) is None
    assert storm_wait_until(T0, [T0 - 59.9] * 6, 6) == T0 + 0.1


def test_storm_breaker_setting() -> None:
    assert storm_wait_until(T0, [T0 - 1], 1) == T0 + 59
    assert gate(facts(), limits(max_launches_per_minute=2), [T0 - 5, T0 - 3], None).kind is WAIT


def test_storm_breaker_survives_the_clock_stepping_back() -> None:
    """Launch times after ``now`` (wall clock stepped back) count as launched now."""
    ahead = [T0 + 3600 + i for i in range(6)]
    assert storm_wait_until(T0, ahead, 6) == T0 + 60


def test_storm_breaker_before_the_deadline_caps_after_it() -> None:
    launches = [T0 - 1] * 6
    verdict = gate(facts(), limits(deadline=T0 + 30), launches, None)
    assert verdict.kind is CAPPED and verdict.reason.startswith("storm breaker")


def test_from_90_percent_the_default_estimate_gates_the_launch() -> None:
    """No evidence yet (the loop passes no estimate): below 90 % the run goes on, from 90 % of a
    cost or token cap an iteration projected past 100 % is not started (issue 14)."""
    assert gate(facts(cost=0.89), limits(max_cost_usd=1.0), [], None).kind is CONTINUE
    verdict = gate(facts(cost=0.90), limits(max_cost_usd=1.0), [], None)
    assert verdict.kind is CAPPED
    assert verdict.reason == (
        "cost cap: next iteration needs ~$0.25, $0.10 left (default (no history yet))"
    )
    assert gate(facts(cost=9.0), limits(max_cost_usd=10.0), [], None).kind is CONTINUE  # fits
    verdict = gate(facts(tokens=910_000), limits(max_tokens=1_000_000), [], None)
    assert verdict.kind is CONTINUE  # 50,000 default tokens fit in the 90,000 left
    verdict = gate(facts(tokens=92_000), limits(max_tokens=100_000), [], None)
    assert verdict.kind is CAPPED
    assert verdict.reason.startswith("token cap: next iteration needs ~50,000 tokens, 8,000 left")
