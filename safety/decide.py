"""What the loop does after an iteration (:func:`decide`); re-exports the rest of the verdict API
(:func:`gate` before a spawn, :func:`gutter_state` for state.json, :class:`Limits`,
:class:`RunFacts`), so the loop finds the verdict API in one place.

Order of the rules in :func:`decide` (the first that applies wins):

1. fatal → FAILED (exit 7): authentication error, a missing or non-executable claude binary
   (or a full disk) at spawn, claude refusing bypassPermissions as root;
2. the last iteration is done (marker or ``--done-when``) → DONE;
3. it reported ``UNATTENDED_BLOCKED`` → BLOCKED;
4. stop requested → STOPPED;
5. caps → CAPPED naming the cap: iterations, hours (deadline), cost and tokens (at the 95 %
   stop level of their alert scale);
6. usage limit → CAPPED "usage limit" when ``on_limit`` is "stop"; else WAIT until
   ``resets_at + limit_margin_s`` (CAPPED when that is past the deadline; backoff when the
   reset is unknown or already past);
7. rate limit / overload / 5xx / network → WAIT with exponential backoff (not a failure);
8. gutter, terminal (:mod:`safety.gutter`): the same permission denial N times → BLOCKED;
   crash loop N times → STUCK "crash loop"; the same failure fingerprint N times → STUCK;
   N iterations without git progress → STUCK;
9. a crash (died by itself within 10 s) → WAIT with the crash backoff;
10. context overflow → CONTINUE with a fresh session (not a failure);
11. otherwise → CONTINUE.

Any WAIT whose end would fall at or after the deadline becomes CAPPED, saying so. Non-terminal
verdicts carry the graded-gutter ``prompt_note`` and, once, ``escalate``.
"""

from __future__ import annotations

from unattended.contracts.status import Outcome
from unattended.safety.api_errors import WAITING_KINDS
from unattended.safety.backoff import (
    MAX_API_BACKOFF_S,
    MAX_CRASH_BACKOFF_S,
    api_backoff,
    crash_backoff,
    storm_wait_until,
    utilization_pct,
    wait_or_cap,
)
from unattended.safety.classify import CRASH_WINDOW_S, fatal_reason
from unattended.safety.gate import gate
from unattended.safety.gutter import (
    Judged,
    Streaks,
    current_streaks,
    gutter_state,
    gutter_verdict,
    judge,
    prompt_note,
)
from unattended.safety.limits import Limits, RunFacts, caps, iterations_used
from unattended.safety.verdict import Verdict, VerdictKind
from unattended.safety.wording import span, when

__all__ = [
    "MAX_API_BACKOFF_S",
    "MAX_CRASH_BACKOFF_S",
    "Limits",
    "RunFacts",
    "Verdict",
    "VerdictKind",
    "api_backoff",
    "crash_backoff",
    "decide",
    "gate",
    "gutter_state",
    "iterations_used",
    "storm_wait_until",
    "utilization_pct",
]


def _usage_limit_wait(
    facts: RunFacts, limits: Limits, last: Judged, found: Streaks, note: str | None, escalate: bool
) -> Verdict:
    trouble = last.trouble
    assert trouble is not None
    which = f" ({trouble.limit_type})" if trouble.limit_type else ""
    if limits.on_limit == "stop":
        return Verdict(
            VerdictKind.CAPPED,
            f"usage limit{which} reached and --on-limit is stop: {trouble.detail}",
            last.outcome,
        )
    resets_at = trouble.resets_at
    if resets_at is not None and resets_at + limits.limit_margin_s > facts.now:
        until = resets_at + limits.limit_margin_s
        if until >= limits.deadline:
            after = (
                "after the deadline"
                if resets_at >= limits.deadline
                else f"too close to the deadline (with the {limits.limit_margin_s:.0f}s margin)"
            )
            return Verdict(
                VerdictKind.CAPPED,
                f"usage limit{which}: it resets at {when(resets_at)}, {after} "
                f"{when(limits.deadline)}",
                last.outcome,
            )
        return wait_or_cap(
            until,
            f"usage limit{which}: waiting until {when(until)} (reset {when(resets_at)} + "
            f"{limits.limit_margin_s:.0f}s margin)",
            limits,
            last.outcome,
            note,
            escalate,
        )
    delay = api_backoff(max(1, found.waits), limits.api_backoff_s, last.record.number)
    known = "already past" if resets_at is not None else "unknown"
    return wait_or_cap(
        facts.now + delay,
        f"usage limit{which}, reset time {known}: retrying in {span(delay)}",
        limits,
        last.outcome,
        note,
        escalate,
    )


def _api_wait(
    facts: RunFacts, limits: Limits, last: Judged, found: Streaks, note: str | None, escalate: bool
) -> Verdict | None:
    """WAIT (or CAPPED) when the last iteration ended on service trouble, else None."""
    trouble = last.trouble
    if trouble is None or trouble.kind not in WAITING_KINDS:
        return None
    if trouble.kind == "usage_limit":
        return _usage_limit_wait(facts, limits, last, found, note, escalate)
    attempt = max(1, found.waits)
    delay = api_backoff(attempt, limits.api_backoff_s, last.record.number)
    return wait_or_cap(
        facts.now + delay,
        f"API {trouble.kind.replace('_', ' ')} ({trouble.detail}): backing off {span(delay)} "
        f"(attempt {attempt})",
        limits,
        last.outcome,
        note,
        escalate,
    )


def decide(facts: RunFacts, limits: Limits) -> Verdict:
    """The verdict after an iteration (rule order in the module doc). ``facts.history`` must
    include the iteration just finished, and the totals its usage (``facts.streaks``, when
    given, the gutter streaks including it)."""
    if not facts.history:
        if facts.stop_requested:
            return Verdict(VerdictKind.STOPPED, "stop requested")
        return caps(facts, limits, None) or Verdict(VerdictKind.CONTINUE, "no iteration yet")
    last = judge(facts.history[-1], facts.done_when_passed)
    outcome = last.outcome
    fatal = fatal_reason(last.record)
    if fatal is not None:
        return Verdict(VerdictKind.FAILED, fatal, outcome)
    if outcome.value in ("done", "blocked"):
        return Verdict(VerdictKind(outcome.value), last.reason, outcome)
    if facts.stop_requested:
        return Verdict(VerdictKind.STOPPED, "stop requested", outcome)
    capped = caps(facts, limits, outcome)
    if capped is not None:
        return capped

    found = current_streaks(facts)
    note = prompt_note(found, limits, last)
    escalate = (
        limits.escalate_after is not None
        and facts.escalated_at is None
        and found.no_progress >= limits.escalate_after
    )
    waited = _api_wait(facts, limits, last, found, note, escalate)
    if waited is not None:
        return waited
    stuck = gutter_verdict(found, limits, outcome)
    if stuck is not None:
        return stuck
    if found.crashes:
        attempt = found.crashes
        delay = crash_backoff(attempt, limits.crash_backoff_s)
        died = (
            "" if outcome is Outcome.CRASHED
            else f"; worker died within {CRASH_WINDOW_S:.0f} s of spawn"
        )  # fmt: skip
        return wait_or_cap(
            facts.now + delay,
            f"{last.reason}{died} ({attempt} of {limits.gutter_iterations}): "
            f"relaunching in {span(delay)}",
            limits,
            outcome,
            note,
            escalate,
        )
    reason = last.reason
    if last.trouble is not None and last.trouble.kind == "context_overflow":
        reason = f"{reason}: the next worker starts a fresh session"
    if escalate:
        reason = (
            f"{reason}; escalating the model after {found.no_progress} iterations without progress"
        )
    return Verdict(VerdictKind.CONTINUE, reason, outcome, None, note, escalate)
