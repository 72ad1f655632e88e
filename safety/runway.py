"""Predict what the next iteration will cost, so the loop never starts work it cannot finish.

The statistic is the upper quartile (nearest rank) of the last five iterations that used the
API: robust to one wild iteration, and leaning to the expensive side on purpose. Iterations with
no usage at all (spawn errors, instant API refusals) say nothing about the work and are skipped.
Fallbacks: this run → the project's earlier runs → a conservative default.

Confidence: ``high`` with at least three samples from this run, ``medium`` with one or two
from this run or at least three from earlier runs, ``low`` otherwise. The hours deadline is
only enforced from a ``high`` estimate (see ``safety.decide.gate``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from unattended.contracts.iteration import IterationRecord

WINDOW = 5
# No history at all: a middling Claude Code iteration, rounded up.
DEFAULT_TOKENS = 50_000
DEFAULT_COST_USD = 0.25
DEFAULT_DURATION_S = 300.0

Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class RunwayEstimate:
    tokens: int
    cost_usd: float
    duration_s: float
    confidence: Confidence
    basis: str  # for run.log: where the numbers came from


def _samples(records: Sequence[IterationRecord], limit: int) -> list[IterationRecord]:
    """The last ``limit`` records that used the API, newest first (scans back only as needed)."""
    found: list[IterationRecord] = []
    for record in reversed(records):
        if record.tokens > 0 or record.cost_usd > 0:
            found.append(record)
            if len(found) == limit:
                break
    return found


def percentile(values: Iterable[float], pct: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``pct`` % of the values at
    or below it, i.e. the ``ceil(pct / 100 * n)``-th smallest (rank 1 at least); 0 for none.
    P99 of 1..100 is 99, P50 of 1..4 is 2, P100 is the maximum."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    # pct * n first: exact for whole percentages, so 99 % of 100 is rank 99, not 100.
    rank = math.ceil(pct * len(ordered) / 100)
    return ordered[min(len(ordered), max(1, rank)) - 1]


def upper_quartile(values: Iterable[float]) -> float:
    """Nearest-rank 75th percentile (the maximum of one or two values); 0 for none."""
    return percentile(values, 75)


def _estimate(samples: list[IterationRecord], confidence: Confidence, basis: str) -> RunwayEstimate:
    return RunwayEstimate(
        tokens=max(0, int(upper_quartile(r.tokens for r in samples))),
        cost_usd=max(0.0, upper_quartile(r.cost_usd for r in samples)),
        duration_s=max(0.0, upper_quartile(r.duration_s for r in samples)),
        confidence=confidence,
        basis=basis,
    )


def estimate_next(
    history: Sequence[IterationRecord], earlier_runs: Sequence[IterationRecord] = ()
) -> RunwayEstimate:
    """Tokens, cost and duration the next iteration will probably need (never negative)."""
    here = _samples(history, WINDOW)
    if here:
        confidence: Confidence = "high" if len(here) >= 3 else "medium"
        return _estimate(here, confidence, f"upper quartile of the last {len(here)} of this run")
    before = _samples(earlier_runs, WINDOW)
    if before:
        confidence = "medium" if len(before) >= 3 else "low"
        return _estimate(
            before, confidence, f"upper quartile of the last {len(before)} of earlier runs"
        )
    return RunwayEstimate(
        DEFAULT_TOKENS, DEFAULT_COST_USD, DEFAULT_DURATION_S, "low", "default (no history yet)"
    )
