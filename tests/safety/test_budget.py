"""Budget arithmetic with the exact strings of issue 6 §2, §3 and §6."""

from __future__ import annotations

import pytest

from unattended.safety.bands import band_of, context_band, context_percent
from unattended.safety.budget import (
    alert_level,
    budget_check,
    can_reserve,
    threshold_error,
    threshold_tokens,
)

# --- alert levels: 80 % warn, 90 % critical, 95 % stop -----------------------------------------


@pytest.mark.parametrize(
    ("used", "cap", "level"),
    [
        (0, 100, "ok"),
        (79.99, 100, "ok"),
        (80, 100, "warn"),
        (89.99, 100, "warn"),
        (90, 100, "critical"),
        (94.99, 100, "critical"),
        (95, 100, "stop"),
        (150, 100, "stop"),
        (0.63, 0.70, "critical"),  # 90 % exactly, despite binary floating point
        (0.095, 0.1, "stop"),
        (0.56, 0.70, "warn"),
        (160_000, 200_000, "warn"),
        (180_000, 200_000, "critical"),
        (190_000, 200_000, "stop"),
        (189_999, 200_000, "critical"),
    ],
)
def test_alert_levels(used: float, cap: float, level: str) -> None:
    assert alert_level(used, cap) == level


@pytest.mark.parametrize("cap", [None, 0, -5])
def test_no_cap_is_always_ok(cap: float | None) -> None:
    assert alert_level(1e12, cap) == "ok"


# --- budget check ------------------------------------------------------------------------------


def test_budget_check_ok_exact_line() -> None:
    check = budget_check(50_000)
    assert check.message == "✅ Token budget OK: 25.0% (remaining: 10.0%) - 50,000/70,000 tokens"
    assert check.can_proceed
    assert check.to_dict() == {
        "can_proceed": True,
        "current_tokens": 50_000,
        "current_percent": 25.0,
        "threshold_percent": 35.0,
        "threshold_tokens": 70_000,
        "message": check.message,
    }


def test_budget_check_exceeded_exact_line() -> None:
    check = budget_check(80_000)
    assert check.message == "❌ Token threshold exceeded: 40.0% (max: 35%) - 80,000/70,000 tokens"
    assert not check.can_proceed
    assert check.current_percent == 40.0 and check.threshold_tokens == 70_000


def test_budget_check_boundary() -> None:
    assert budget_check(70_000).can_proceed
    assert budget_check(70_000).message == (
        "✅ Token budget OK: 35.0% (remaining: 0.0%) - 70,000/70,000 tokens"
    )
    assert not budget_check(70_001).can_proceed
    assert budget_check(70_001).message == (
        "❌ Token threshold exceeded: 35.0% (max: 35%) - 70,001/70,000 tokens"
    )
    assert budget_check(0).message == (
        "✅ Token budget OK: 0.0% (remaining: 35.0%) - 0/70,000 tokens"
    )


def test_budget_check_threshold_and_budget_options() -> None:
    check = budget_check(30_000, budget=100_000, threshold_pct=20)
    assert check.message == "❌ Token threshold exceeded: 30.0% (max: 20%) - 30,000/20,000 tokens"
    check = budget_check(10_000, budget=100_000, threshold_pct=95)
    assert check.message == "✅ Token budget OK: 10.0% (remaining: 85.0%) - 10,000/95,000 tokens"
    check = budget_check(50_000, threshold_pct=37.5)
    assert check.threshold_tokens == 75_000 and "(remaining: 12.5%)" in check.message
    assert "(max: 37.5%)" in budget_check(80_000, threshold_pct=37.5).message


@pytest.mark.parametrize("threshold", [19.9, 95.1, 0, 100, -1])
def test_threshold_outside_20_95_is_refused(threshold: float) -> None:
    problem = threshold_error(threshold)
    assert problem is not None and "between 20 and 95 percent" in problem
    with pytest.raises(ValueError, match="between 20 and 95"):
        budget_check(1, threshold_pct=threshold)


@pytest.mark.parametrize("threshold", [20, 35, 95, 50.5])
def test_threshold_inside_20_95_is_accepted(threshold: float) -> None:
    assert threshold_error(threshold) is None


def test_bad_tokens_or_budget() -> None:
    with pytest.raises(ValueError, match="negative"):
        budget_check(-1)
    with pytest.raises(ValueError, match="positive"):
        budget_check(1, budget=0)


def test_threshold_tokens_rounds_down_without_float_noise() -> None:
    assert threshold_tokens(200_000, 35) == 70_000
    assert threshold_tokens(100_000, 33.3) == 33_300
    assert threshold_tokens(7, 50) == 3


# --- reservations: strictly below 95 % ---------------------------------------------------------


def test_can_reserve() -> None:
    assert can_reserve(used=0, reserved=0, amount=94, budget=100)
    assert not can_reserve(used=0, reserved=0, amount=95, budget=100)
    assert not can_reserve(used=50, reserved=40, amount=5, budget=100)
    assert can_reserve(used=50, reserved=40, amount=4, budget=100)
    assert not can_reserve(used=0, reserved=0, amount=-1, budget=100)
    assert not can_reserve(used=0, reserved=0, amount=1, budget=0)


# --- context bands: normal < 70 % ≤ warn < 85 % ≤ stop -----------------------------------------


@pytest.mark.parametrize(
    ("tokens", "band"),
    [
        (0, "normal"),
        (139_999, "normal"),
        (140_000, "warn"),
        (169_999, "warn"),
        (170_000, "stop"),
        (250_000, "stop"),
        (-5, "normal"),
    ],
)
def test_context_bands_of_a_200k_window(tokens: int, band: str) -> None:
    assert context_band(tokens, 200_000, 70, 85) == band


def test_context_bands_other_window_and_settings() -> None:
    assert context_band(700_000, 1_000_000, 70, 85) == "warn"
    assert context_band(500_000, 1_000_000, 50, 60) == "warn"
    assert context_band(7, 10, 70, 85) == "warn"  # 70.00000000000001 % is 70 %
    assert context_percent(50_000, 200_000) == 25.0
    with pytest.raises(ValueError, match="positive"):
        context_band(1, 0, 70, 85)


def test_the_hook_and_the_rules_share_one_band_rule() -> None:
    """58,000 of 100,000 tokens with warn at 58 %: the hook said normal, the rules warn."""
    from unattended.supervisor.hook import meter

    assert meter.band_of is band_of
    assert context_band(58_000, 100_000, 58, 85) == "warn"
    assert band_of(58_000 / 100_000 * 100, 58, 85) == "warn"


def test_cycle_close_reason_says_the_context_ended_it() -> None:
    from unattended.safety.budget import cycle_close_reason

    assert cycle_close_reason("made progress", 172_000, 200_000, 85.0, True) == (
        "Token threshold exceeded: 86.0%"
    )
    assert cycle_close_reason("made progress", 170_000, 200_000, 85.0, True) == (
        "Token threshold exceeded: 85.0%"
    )
    assert cycle_close_reason("made progress", 169_999, 200_000, 85.0, True) == "made progress"
    # A run that ends (done, capped...) keeps its verdict; no reading keeps it too.
    assert cycle_close_reason("task complete", 190_000, 200_000, 85.0, False) == "task complete"
    assert cycle_close_reason("made progress", 190_000, None, 85.0, True) == "made progress"
