"""How long to wait, and whether waiting is still worth it: API and crash backoffs, the storm
breaker, quota utilization, and the WAIT-or-CAPPED builder every waiting rule goes through.

Pure: jitter is derived from the iteration number, never from ``random``, so a verdict can be
replayed in a test.
"""

from __future__ import annotations

from collections.abc import Sequence

from unattended.contracts.status import Outcome
from unattended.safety.limits import Limits
from unattended.safety.verdict import Verdict, VerdictKind
from unattended.safety.wording import when

MAX_API_BACKOFF_S = 900.0
MAX_CRASH_BACKOFF_S = 300.0
JITTER_FRACTION = 0.1  # up to +10 % on API backoffs, so parallel runs do not retry in step
STORM_WINDOW_S = 60.0
UNKNOWN_RESET_WAIT_S = 900.0  # quota window over the limit with no reset time reported
# Utilization is a fraction of the window (Agent SDK: "0.0 to 1.0"; above 1 when over it).
# Values above this are taken as percents, should a source ever report them that way.
_FRACTION_MAX = 2.0


def _unit(seed: int) -> float:
    """A number in [0, 1) derived from ``seed`` (Knuth's multiplicative hash)."""
    return ((seed * 2654435761) % 2**32) / 2**32


def _doubling(attempt: int, base: float) -> float:
    return base * 2.0 ** (min(max(attempt, 1), 64) - 1)


def api_backoff(attempt: int, base: float, seed: int = 0) -> float:
    """Seconds before API attempt ``attempt`` (1 = first wait): ``base`` doubling, +0–10 %
    jitter, capped at 900 s. Non-decreasing in ``attempt`` whatever the seed: doubling beats
    jitter, and the cap applies after the jitter."""
    return min(MAX_API_BACKOFF_S, _doubling(attempt, base) * (1 + JITTER_FRACTION * _unit(seed)))


def crash_backoff(attempt: int, base: float) -> float:
    """Seconds before relaunching after crash ``attempt`` (1 = first): doubling, capped at 300."""
    return min(MAX_CRASH_BACKOFF_S, _doubling(attempt, base))


def utilization_pct(value: float) -> float:
    """A quota utilization as a percent. Fractions (up to 2.0, i.e. 200 % of the window) are
    scaled; larger numbers are taken to be percents already. Over-limit fractions such as 1.05
    must read as 105 %, never as 1.05 %, or the run would keep spending past the limit."""
    return value * 100 if value <= _FRACTION_MAX else value


def storm_wait_until(now: float, launch_times: Sequence[float], per_minute: int) -> float | None:
    """When the next launch may happen without exceeding ``per_minute`` launches in any 60 s
    window ``(t - 60, t]``, or None when a launch may happen now.

    A launch time after ``now`` (the wall clock stepped back) counts as made ``now``: the
    breaker must not be bypassed by a clock change, nor stall for the size of the step.
    """
    per_minute = max(1, per_minute)
    recent = sorted(min(t, now) for t in launch_times if min(t, now) > now - STORM_WINDOW_S)
    if len(recent) < per_minute:
        return None
    return recent[-per_minute] + STORM_WINDOW_S


def wait_or_cap(
    until: float,
    reason: str,
    limits: Limits,
    outcome: Outcome | None,
    note: str | None = None,
    escalate: bool = False,
) -> Verdict:
    """WAIT until ``until``; CAPPED instead when that is at or past the deadline (a wait that
    outlives the run is no wait: say so and end)."""
    if until >= limits.deadline:
        return Verdict(
            VerdictKind.CAPPED,
            f"{reason}; waiting until {when(until)} would pass the deadline "
            f"{when(limits.deadline)}",
            outcome,
        )
    return Verdict(VerdictKind.WAIT, reason, outcome, until, note, escalate)
