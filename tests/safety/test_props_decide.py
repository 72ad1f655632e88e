"""Property tests (hypothesis) for decide() and gate(): caps, the gutter, API trouble, the storm
breaker, runway and quota pacing (issue 4 "Between iterations", issue 6 sections 2 and 5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.safety.records import HOUR, T0, facts, limits, rec
from tests.safety.strategies import (
    COUNTED,
    GOING_ON,
    KINDS,
    NOT_PROGRESS,
    WAITING,
    N,
    histories,
    history_of,
    segment,
)
from unattended.contracts.iteration import IterationRecord
from unattended.contracts.status import Outcome
from unattended.safety.backoff import crash_backoff, storm_wait_until
from unattended.safety.decide import decide, gate, gutter_state
from unattended.safety.runway import RunwayEstimate
from unattended.safety.verdict import VerdictKind

# --- decide: the same failure ---------------------------------------------------------------------


@given(
    errors=st.lists(st.tuples(st.integers(0, 10**9), segment, st.uuids()), min_size=N, max_size=N)
)
def test_the_same_failure_n_times_is_stuck(errors: list[tuple[int, str, object]]) -> None:
    records = [
        rec(
            saw_result=False,
            exit_code=1,
            duration=30,
            last_stderr_line=f"AssertionError in /src/{path}/t.py line {line} run {uid}",
        )
        for line, path, uid in errors
    ]
    verdict = decide(facts(history_of(records)), limits())
    assert verdict.kind is VerdictKind.STUCK
    assert verdict.reason.startswith(f"the same failure {N} times in a row")


# --- decide: caps ---------------------------------------------------------------------------------


@given(
    history=histories.filter(bool),
    over=st.floats(0, 48 * HOUR, allow_nan=False),
    which=st.sampled_from(["deadline", "iterations", "cost", "tokens"]),
    stop=st.booleans(),
)
def test_nothing_goes_on_once_a_cap_is_reached(
    history: list[IterationRecord], over: float, which: str, stop: bool
) -> None:
    records = history_of(history)
    lim = limits(max_cost_usd=5.0, max_tokens=1_000_000)
    now, cost, tokens = T0 + HOUR, 0.0, 0
    if which == "deadline":
        now = lim.deadline + over
    elif which == "iterations":
        lim = limits(max_iterations=len(records))
    elif which == "cost":
        cost = 5.0 + over / 1000
    else:
        tokens = 1_000_000 + int(over)
    run = facts(records, now=now, cost=cost, tokens=tokens, stop_requested=stop)
    assert decide(run, lim).kind not in GOING_ON
    assert gate(run, lim, [], None).kind not in GOING_ON


@given(history=histories.filter(bool), now=st.floats(T0, T0 + 23 * HOUR, allow_nan=False))
def test_a_wait_always_ends_before_the_deadline(history: list[IterationRecord], now: float) -> None:
    run = facts(history_of(history), now=now)
    lim = limits()
    verdict = decide(run, lim)
    if verdict.kind is VerdictKind.WAIT:
        assert verdict.wait_until is not None
        assert now <= verdict.wait_until < lim.deadline
    else:
        assert verdict.wait_until is None
    assert verdict.reason


# --- decide: the gutter ---------------------------------------------------------------------------


@given(before=histories, after=st.lists(st.sampled_from(NOT_PROGRESS), max_size=N - 1))
def test_git_progress_resets_the_gutter(before: list[IterationRecord], after: list[str]) -> None:
    records = history_of([*before, KINDS["progress"], *(KINDS[name] for name in after)])
    run = facts(records)
    state = gutter_state(run, limits())
    counted = sum(name not in WAITING for name in after)
    assert state.no_progress == counted
    assert max(state.crashes, state.denials, state.same_failure) <= counted
    if not after:
        assert state.reason is None
    assert decide(run, limits()).kind in GOING_ON


@given(names=st.lists(st.sampled_from(COUNTED), min_size=N, max_size=N), waits=st.data())
def test_n_counted_iterations_without_progress_end_the_run(
    names: list[str], waits: st.DataObject
) -> None:
    records: list[IterationRecord] = []
    for name in names:
        records += [
            KINDS[w] for w in waits.draw(st.lists(st.sampled_from(sorted(WAITING)), max_size=2))
        ]
        records.append(KINDS[name])
    verdict = decide(facts(history_of(records)), limits())
    assert verdict.kind in (VerdictKind.STUCK, VerdictKind.BLOCKED)


@given(
    escalated_after=st.integers(1, 4),
    names=st.lists(st.sampled_from(COUNTED), min_size=1, max_size=N - 1),
)
def test_escalation_resets_the_no_progress_count(escalated_after: int, names: list[str]) -> None:
    before = [KINDS["no_progress"]] * escalated_after
    records = history_of([*before, *(KINDS[n] for n in names)])
    run = facts(records, escalated_at=escalated_after)
    assert gutter_state(run, limits()).no_progress == len(names)
    assert decide(run, limits(escalate_after=escalated_after)).kind in GOING_ON


@given(count=st.integers(1, N - 1), base=st.floats(0, 400, allow_nan=False))
def test_crash_loop_backoff_doubles_capped_at_300(count: int, base: float) -> None:
    records = history_of([KINDS["crash"]] * count)
    run = facts(records)
    verdict = decide(run, limits(crash_backoff_s=base))
    assert verdict.kind is VerdictKind.WAIT and verdict.wait_until is not None
    assert verdict.wait_until - run.now == pytest.approx(
        min(300.0, base * 2 ** (count - 1)), abs=1e-6
    )
    assert crash_backoff(count + 1, base) == min(300.0, 2 * crash_backoff(count, base))


@given(n=st.integers(1, 8), base=st.floats(0, 60, allow_nan=False))
def test_crash_loop_gives_up_after_n(n: int, base: float) -> None:
    run = facts(history_of([KINDS["crash"]] * n))
    verdict = decide(run, limits(gutter_iterations=n, crash_backoff_s=base))
    assert verdict.kind is VerdictKind.STUCK and verdict.reason.startswith("crash loop")


@given(
    tool=st.from_regex(r"[A-Z][A-Za-z]{1,12}(\([a-z:* ]{1,10}\))?", fullmatch=True),
    extra=st.lists(
        st.lists(st.sampled_from(["Write", "Edit", "WebFetch"]), max_size=2), min_size=N, max_size=N
    ),
)
def test_the_same_denial_n_times_is_blocked(tool: str, extra: list[list[str]]) -> None:
    records = [rec(permission_denials=[tool, *more]) for more in extra]
    verdict = decide(facts(history_of(records)), limits())
    assert verdict.kind is VerdictKind.BLOCKED
    assert verdict.reason.startswith(f"the worker needs permission to run {tool}")


# --- decide: API trouble --------------------------------------------------------------------------


def _usage_limit(resets_at: float | None) -> IterationRecord:
    return rec(
        is_error=True,
        exit_code=1,
        tool_calls=0,
        result_text="You've hit your session limit",
        rate_limit={"status": "rejected", "resets_at": resets_at, "limit_type": "five_hour"},
    )


@given(prefix=histories, after=st.floats(0, 30 * 24 * HOUR, allow_nan=False))
def test_usage_limit_reset_past_the_deadline_caps(
    prefix: list[IterationRecord], after: float
) -> None:
    lim = limits()
    records = history_of([*prefix, _usage_limit(lim.deadline + after)])
    verdict = decide(facts(records, now=T0 + HOUR), lim)
    assert verdict.kind is VerdictKind.CAPPED and "usage limit" in verdict.reason


@given(prefix=histories, reset_in=st.floats(1, 20 * HOUR, allow_nan=False))
def test_usage_limit_waits_until_reset_plus_margin(
    prefix: list[IterationRecord], reset_in: float
) -> None:
    now = T0 + HOUR
    records = history_of([*prefix, _usage_limit(now + reset_in)])
    verdict = decide(facts(records, now=now), limits())
    assert verdict.kind is VerdictKind.WAIT
    assert verdict.wait_until == now + reset_in + 120


@given(prefix=histories, resets_at=st.one_of(st.none(), st.floats(T0, T0 + 99 * HOUR)))
def test_on_limit_stop_caps_with_usage_limit(
    prefix: list[IterationRecord], resets_at: float | None
) -> None:
    records = history_of([*prefix, _usage_limit(resets_at)])
    verdict = decide(facts(records, now=T0 + HOUR), limits(on_limit="stop"))
    assert verdict.kind is VerdictKind.CAPPED and "usage limit" in verdict.reason


@given(
    prefix=histories,
    text=st.sampled_from(
        ["Invalid API key · Fix external API key", "Not logged in · Please run /login"]
    ),
    status=st.sampled_from([None, 401]),
)
def test_auth_error_fails(prefix: list[IterationRecord], text: str, status: int | None) -> None:
    record = rec(is_error=True, exit_code=1, result_text=text, api_error_status=status)
    verdict = decide(facts(history_of([*prefix, record]), now=T0 + HOUR), limits())
    assert verdict.kind is VerdictKind.FAILED
    assert verdict.kind.status.exit_code == 7


@given(
    prefix=histories,
    record=st.sampled_from(
        [
            rec(is_error=True, exit_code=1, result_text="Prompt is too long"),
            rec(is_error=True, exit_code=1, api_error_status=400, result_text="prompt is too long"),
            rec(is_error=True, exit_code=1, terminal_reason="prompt_too_long"),
        ]
    ),
)
def test_context_limit_is_not_a_failure(
    prefix: list[IterationRecord], record: IterationRecord
) -> None:
    records = history_of([*prefix, KINDS["progress"], record])
    verdict = decide(facts(records, now=T0 + HOUR), limits())
    assert verdict.kind is VerdictKind.CONTINUE
    assert verdict.outcome is not Outcome.FAILED
    assert "fresh session" in verdict.reason


# --- gate: storm breaker, runway, quota -----------------------------------------------------------


@given(
    gaps=st.lists(st.integers(0, 40 * 64).map(lambda g: g / 64), max_size=60),
    per_minute=st.integers(1, 10),
)
def test_storm_breaker_never_allows_more_than_n_launches_in_any_minute(
    gaps: list[float], per_minute: int
) -> None:
    launches: list[float] = []
    now = T0
    for gap in gaps:
        now += gap
        slot = storm_wait_until(now, launches, per_minute)
        if slot is not None:
            assert slot > now
            now = slot
            assert storm_wait_until(now, launches, per_minute) is None
        launches.append(now)
    for end in launches:
        assert sum(end - 60 < t <= end for t in launches) <= per_minute


@given(
    cap=st.floats(0.5, 100),
    spent_pct=st.floats(0, 0.94),
    need=st.floats(0, 100),
)
def test_runway_refuses_exactly_when_the_prediction_crosses_the_cost_cap(
    cap: float, spent_pct: float, need: float
) -> None:
    spent = cap * spent_pct
    estimate = RunwayEstimate(1, need, 1.0, "high", "test")
    verdict = gate(facts(cost=spent), limits(max_cost_usd=cap), [], estimate)
    if need > cap - spent:
        assert verdict.kind is VerdictKind.CAPPED
        assert verdict.reason.startswith(
            f"cost cap: next iteration needs ~${need:.2f}, ${cap - spent:.2f} left"
        )
    else:
        assert verdict.kind is VerdictKind.CONTINUE


@given(
    utilization=st.floats(0, 1.5),
    max_pct=st.floats(1, 100),
    reset_in=st.floats(1, 20 * HOUR),
)
def test_quota_pacing_waits_for_the_windows_reset(
    utilization: float, max_pct: float, reset_in: float
) -> None:
    quota = {"five_hour": (utilization, T0 + reset_in)}
    verdict = gate(facts(quota=quota), limits(max_quota_pct=max_pct), [], None)
    if utilization * 100 >= max_pct:
        assert verdict.kind is VerdictKind.WAIT
        assert verdict.wait_until == T0 + reset_in + 120
    else:
        assert verdict.kind is VerdictKind.CONTINUE
