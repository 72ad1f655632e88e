"""Runway estimator: a robust statistic of recent iterations, with fallbacks (issue 6 §2)."""

from __future__ import annotations

from tests.safety.records import rec
from unattended.safety.runway import (
    DEFAULT_COST_USD,
    DEFAULT_DURATION_S,
    DEFAULT_TOKENS,
    estimate_next,
    upper_quartile,
)


def used(cost: float, tokens: int = 10_000, duration: float = 100.0, number: int = 1) -> object:
    return rec(number, cost_usd=cost, input_tokens=tokens, duration=duration)


def test_default_without_any_history() -> None:
    estimate = estimate_next([])
    assert (estimate.tokens, estimate.cost_usd, estimate.duration_s) == (
        DEFAULT_TOKENS,
        DEFAULT_COST_USD,
        DEFAULT_DURATION_S,
    )
    assert estimate.confidence == "low" and estimate.basis == "default (no history yet)"


def test_confidence_grows_with_samples_from_this_run() -> None:
    assert estimate_next([used(0.1)]).confidence == "medium"
    assert estimate_next([used(0.1), used(0.2)]).confidence == "medium"
    three = estimate_next([used(0.1), used(0.2), used(0.3)])
    assert three.confidence == "high"
    assert three.basis == "upper quartile of the last 3 of this run"


def test_falls_back_to_earlier_runs() -> None:
    earlier = [used(0.5), used(0.6), used(0.7)]
    estimate = estimate_next([], earlier)
    assert estimate.confidence == "medium" and estimate.cost_usd == 0.7
    assert estimate.basis == "upper quartile of the last 3 of earlier runs"
    assert estimate_next([], earlier[:2]).confidence == "low"
    assert estimate_next([used(0.1)], earlier).cost_usd == 0.1  # this run wins


def test_upper_quartile_of_the_last_five_resists_one_wild_iteration() -> None:
    history = [used(c) for c in (9.0, 0.10, 0.20, 0.30, 0.40, 5.00)]
    # last five: 0.10 .. 0.40 and 5.00; nearest-rank 75th percentile is the 4th: 0.40
    assert estimate_next(history).cost_usd == 0.40
    assert upper_quartile([]) == 0.0
    assert upper_quartile([3.0]) == 3.0
    assert upper_quartile([1.0, 2.0]) == 2.0
    assert upper_quartile([4, 1, 3, 2]) == 3


def test_iterations_without_usage_say_nothing() -> None:
    history = [used(0.3), used(0.0, tokens=0), rec(spawn_error="x", duration=0)]
    estimate = estimate_next(history)
    assert estimate.cost_usd == 0.3 and estimate.confidence == "medium"


def test_tokens_are_billable_tokens() -> None:
    record = rec(input_tokens=100, output_tokens=20, cache_creation_tokens=3, cache_read_tokens=999)
    assert estimate_next([record]).tokens == 123


def test_percentile_is_nearest_rank() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from unattended.safety.runway import percentile

    one_to_100 = list(range(1, 101))
    assert percentile(one_to_100, 99) == 99  # was 100: off by one rank
    assert percentile(one_to_100, 50) == 50
    assert percentile(one_to_100, 100) == 100
    assert percentile(one_to_100, 1) == 1
    assert percentile(one_to_100, 0) == 1
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([3.0, 1.0], 75) == 3.0
    assert percentile([], 99) == 0.0

    @given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=60), st.integers(1, 100))
    def at_least_pct_at_or_below(values: list[int], pct: int) -> None:
        p = percentile(values, pct)
        assert p in values
        assert sum(v <= p for v in values) * 100 >= pct * len(values)
        assert sum(v < p for v in values) * 100 < pct * len(values)

    at_least_pct_at_or_below()
