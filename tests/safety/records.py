"""Builders for the facts ``safety`` judges: iteration records, run facts and limits.

Defaults describe an ordinary clean iteration: the worker ran one tool, printed a successful
``result`` event, exited 0, and changed nothing in git. Tests override what they are about.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from unattended.contracts.iteration import GitPoint, IterationRecord, RateLimitSeen
from unattended.safety.decide import Limits, RunFacts

T0 = 1_900_000_000.0  # 2030-03-17T17:46:40Z: the epoch the CLI facts use for resets
HOUR = 3600.0


def git(n: int) -> GitPoint:
    return GitPoint(head=f"{n:040x}", tree=f"{n + 10_000:040x}")


def rec(
    number: int = 1,
    *,
    progress: bool = False,
    start: float | None = None,
    duration: float = 60.0,
    head: int = 1,
    rate_limit: dict[str, Any] | None = None,
    **fields: Any,
) -> IterationRecord:
    """One iteration. ``progress`` moves HEAD from ``head`` to ``head + 1``."""
    started = T0 + (number - 1) * 100 if start is None else start
    values: dict[str, Any] = dict(
        number=number,
        started_at=datetime.fromtimestamp(started, UTC),
        ended_at=datetime.fromtimestamp(started + duration, UTC),
        duration_s=duration,
        exit_code=0,
        saw_result=True,
        result_subtype="success",
        result_text="I looked around.",
        tool_calls=1,
        git_before=git(head),
        git_after=git(head + 1) if progress else git(head),
    )
    values.update(fields)
    if rate_limit is not None:
        values["rate_limit"] = RateLimitSeen(**rate_limit)
    return IterationRecord(**values)


def renumber(records: list[IterationRecord]) -> tuple[IterationRecord, ...]:
    """The records numbered 1..n in order, so any list reads as a run's history."""
    return tuple(r.model_copy(update={"number": i}) for i, r in enumerate(records, start=1))


def facts(
    history: list[IterationRecord] | tuple[IterationRecord, ...] = (),
    *,
    now: float | None = None,
    cost: float = 0.0,
    tokens: int = 0,
    **fields: Any,
) -> RunFacts:
    history = tuple(history)
    if now is None:
        now = history[-1].ended_at.timestamp() if history else T0
    return RunFacts(history=history, now=now, cost_usd=cost, tokens=tokens, **fields)


def limits(**fields: Any) -> Limits:
    values: dict[str, Any] = dict(deadline=T0 + 24 * HOUR, max_iterations=200)
    values.update(fields)
    return Limits(**values)
