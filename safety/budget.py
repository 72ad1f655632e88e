"""Budget arithmetic: alert levels, the ``budget check`` verdict, context bands, reservations.

Compatible with the budget-monitor designs this product absorbs: 80 % warn, 90 % critical,
95 % stop; ``budget check`` passes when TOKENS <= threshold tokens and prints exactly
``✅ Token budget OK: 25.0% (remaining: 10.0%) - 50,000/70,000 tokens`` or
``❌ Token threshold exceeded: 40.0% (max: 35%) - 80,000/70,000 tokens``, where "remaining" is
the threshold percent minus the percent used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from unattended.safety.bands import context_percent

AlertLevel = Literal["ok", "warn", "critical", "stop"]

WARN_PCT = 80.0
CRITICAL_PCT = 90.0
STOP_PCT = 95.0
DEFAULT_BUDGET = 200_000
DEFAULT_THRESHOLD_PCT = 35.0
THRESHOLD_MIN_PCT = 20.0
THRESHOLD_MAX_PCT = 95.0


def alert_level(used: float, cap: float | None) -> AlertLevel:
    """How close ``used`` is to ``cap``: ok < 80 % ≤ warn < 90 % ≤ critical < 95 % ≤ stop.

    The percent is rounded to 9 decimals first: $0.63 of $0.70 is 90 %, not the 89.99999 %
    binary floating point makes of it.
    """
    if cap is None or cap <= 0:
        return "ok"
    pct = round(used / cap * 100, 9)
    if pct >= STOP_PCT:
        return "stop"
    if pct >= CRITICAL_PCT:
        return "critical"
    if pct >= WARN_PCT:
        return "warn"
    return "ok"


_LEVEL_ORDER: tuple[AlertLevel, ...] = ("ok", "warn", "critical", "stop")


def crossed_level(before: float, after: float, cap: float | None) -> AlertLevel | None:
    """The alert level ``after`` reaches when it is higher than ``before``'s, else None."""
    old, new = alert_level(before, cap), alert_level(after, cap)
    return new if _LEVEL_ORDER.index(new) > _LEVEL_ORDER.index(old) else None


def alert_line(level: AlertLevel, committed: int, budget: int) -> str:
    """The line ``reserve``/``record`` print when they cross a level (the daemon's format)."""
    return (
        f"budget {level}: tokens at {100 * committed / budget:.0f}% "
        f"({committed:,} of {budget:,} tokens)"
    )


@dataclass(frozen=True)
class BudgetCheck:
    can_proceed: bool
    current_tokens: int
    current_percent: float
    threshold_percent: float
    threshold_tokens: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def threshold_error(threshold_pct: float) -> str | None:
    """Why a ``--threshold`` is refused, or None when it is accepted (20–95)."""
    if not THRESHOLD_MIN_PCT <= threshold_pct <= THRESHOLD_MAX_PCT:
        return (
            f"threshold must be between {THRESHOLD_MIN_PCT:g} and {THRESHOLD_MAX_PCT:g} "
            f"percent, not {threshold_pct:g}"
        )
    return None


def threshold_tokens(budget: int, threshold_pct: float) -> int:
    """Whole tokens allowed at ``threshold_pct`` of ``budget`` (rounded down)."""
    return math.floor(round(budget * threshold_pct / 100, 6))


def budget_check(
    tokens: int, budget: int = DEFAULT_BUDGET, threshold_pct: float = DEFAULT_THRESHOLD_PCT
) -> BudgetCheck:
    """May a step using ``tokens`` go ahead? Raises ValueError on impossible input."""
    if tokens < 0:
        raise ValueError(f"tokens must not be negative, not {tokens}")
    if budget <= 0:
        raise ValueError(f"budget must be a positive number of tokens, not {budget}")
    problem = threshold_error(threshold_pct)
    if problem:
        raise ValueError(problem)
    limit = threshold_tokens(budget, threshold_pct)
    current = tokens / budget * 100
    counts = f"{tokens:,}/{limit:,} tokens"
    if tokens <= limit:
        remaining = max(0.0, threshold_pct - current)
        message = f"✅ Token budget OK: {current:.1f}% (remaining: {remaining:.1f}%) - {counts}"
    else:
        message = (
            f"❌ Token threshold exceeded: {current:.1f}% (max: {threshold_pct:g}%) - {counts}"
        )
    return BudgetCheck(
        can_proceed=tokens <= limit,
        current_tokens=tokens,
        current_percent=round(current, 1),
        threshold_percent=threshold_pct,
        threshold_tokens=limit,
        message=message,
    )


def can_reserve(used: int, reserved: int, amount: int, budget: int) -> bool:
    """``budget reserve``: granted while used + reserved + amount stays strictly below 95 %."""
    if amount < 0 or budget <= 0:
        return False
    return (used + reserved + amount) * 100 < STOP_PCT * budget


def cycle_close_reason(
    reason: str, peak_tokens: int, window: int | None, stop_pct: float, run_goes_on: bool
) -> str:
    """The reason on the ``Cycle N closed:`` line. An iteration the context ended (it reached
    the stop band and the run goes on with a fresh worker) says so as the seeds do:
    ``Token threshold exceeded: <X.X>%``; any other ending keeps the verdict's reason."""
    if not run_goes_on or not window or window <= 0:
        return reason
    pct = context_percent(peak_tokens, window)
    if round(pct, 9) < stop_pct:
        return reason
    return f"Token threshold exceeded: {pct:.1f}%"
