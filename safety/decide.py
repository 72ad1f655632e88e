"""What the loop does next: after an iteration (:func:`decide`) and before a spawn (:func:`gate`).

Both are pure: the loop reads the clock once and passes ``now`` in; jitter is derived from the
iteration number, never from ``random``.

Order of the rules in :func:`decide` (the first that applies wins):

1. fatal → FAILED (exit 7): authentication error, a missing or non-executable claude binary
   (or a full disk) at spawn, claude refusing bypassPermissions as root;
2. the last iteration is done (marker or ``--done-when``) → DONE;
3. it reported ``UNATTENDED_BLOCKED`` → BLOCKED;
4. stop requested → STOPPED;
5. caps → CAPPED naming the cap: iterations, hours (deadline), cost and tokens (at the 95 %
   stop level of their alert scale);
6. usage limit → CAPPED "usage limit" when ``on_limit`` is "stop"; else WAIT until
   ``resets_at + limit_margin_s`` (backoff when the reset is unknown or already past);
7. rate limit / overload / 5xx / network → WAIT with exponential backoff (not a failure);
8. gutter, terminal: the same permission denial N times → BLOCKED; crash loop N times → STUCK
   "crash loop"; the same failure fingerprint N times → STUCK; N iterations without git
   progress → STUCK;
9. a crash (died by itself within 10 s) → WAIT with the crash backoff;
10. context overflow → CONTINUE with a fresh session;
11. otherwise → CONTINUE.

Any WAIT whose end would fall after the deadline becomes CAPPED, saying so. Non-terminal
verdicts carry the graded-gutter ``prompt_note`` and, once, ``escalate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from contracts.iteration import IterationRecord
from contracts.settings import Settings
from contracts.state import GutterState
from contracts.status import Outcome
from contracts.timefmt import from_epoch, utc_iso
from safety.api_errors import WAITING_KINDS, ApiTrouble, classify_api_trouble
from safety.budget import alert_level
from safety.classify import (
    CRASH_WINDOW_S,
    classify,
    denied_tools,
    failure_fingerprint,
    fatal_reason,
    is_crash,
    last_error,
)
from safety.runway import RunwayEstimate
from safety.verdict import Verdict, VerdictKind

MAX_API_BACKOFF_S = 900.0
MAX_CRASH_BACKOFF_S = 300.0
JITTER_FRACTION = 0.1  # up to +10 % on API backoffs, so parallel runs do not retry in step
STORM_WINDOW_S = 60.0
UNKNOWN_RESET_WAIT_S = 900.0  # quota window over the limit with no reset time reported


@dataclass(frozen=True)
class Limits:
    deadline: float  # epoch seconds (wall clock)
    max_iterations: int
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    gutter_iterations: int = 5
    crash_backoff_s: float = 5.0
    on_limit: str = "wait"
    api_backoff_s: float = 30.0
    limit_margin_s: float = 120.0
    max_launches_per_minute: int = 6
    escalate_after: int | None = None
    max_quota_pct: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings, deadline: float) -> Limits:
        return cls(
            deadline=deadline,
            max_iterations=settings.max_iterations,
            max_cost_usd=settings.max_cost_usd,
            max_tokens=settings.max_tokens,
            gutter_iterations=settings.gutter_iterations,
            crash_backoff_s=settings.crash_backoff_s,
            on_limit=settings.on_limit,
            api_backoff_s=settings.api_backoff_s,
            limit_margin_s=settings.limit_margin_s,
            max_launches_per_minute=settings.max_launches_per_minute,
            escalate_after=settings.escalate_after,
            max_quota_pct=settings.max_quota_pct,
        )


@dataclass(frozen=True)
class RunFacts:
    history: tuple[IterationRecord, ...]  # this run's iterations, oldest first
    now: float  # wall clock epoch, read once by the loop
    cost_usd: float  # run totals
    tokens: int
    stop_requested: bool = False
    done_when_passed: bool | None = None  # for the LAST iteration
    # Number of the last iteration run with the old model (the one whose verdict escalated);
    # the gutter counts only iterations after it.
    escalated_at: int | None = None
    # window -> (utilization, resets_at). Utilization in [0, 1] is a fraction (the CLI's
    # headers), above 1 a percent.
    quota: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)


# --- small pure helpers ----------------------------------------------------------------------


def _unit(seed: int) -> float:
    """A number in [0, 1) derived from ``seed`` (Knuth's multiplicative hash)."""
    return ((seed * 2654435761) % 2**32) / 2**32


def api_backoff(attempt: int, base: float, seed: int = 0) -> float:
    """Seconds before API attempt ``attempt`` (1 = first wait): base doubling, +0–10 % jitter,
    capped at 900 s. Monotone in ``attempt`` whatever the seeds, since doubling beats jitter."""
    raw = base * 2.0 ** (min(max(attempt, 1), 64) - 1)
    return min(MAX_API_BACKOFF_S, raw * (1 + JITTER_FRACTION * _unit(seed)))


def crash_backoff(attempt: int, base: float) -> float:
    """Seconds before relaunching after crash ``attempt`` (1 = first): doubling, capped at 300."""
    return min(MAX_CRASH_BACKOFF_S, base * 2.0 ** (min(max(attempt, 1), 64) - 1))


def utilization_pct(value: float) -> float:
    """A quota utilization as a percent: fractions (<= 1) are scaled, percents kept."""
    return value * 100 if value <= 1 else value


def _when(epoch: float) -> str:
    return utc_iso(from_epoch(epoch))


def _seconds(span: float) -> str:
    span = max(0.0, span)
    if span < 120:
        return f"{span:.0f}s"
    if span < 7200:
        return f"{span / 60:.0f} min"
    return f"{span / 3600:.1f} h"


def iterations_used(facts: RunFacts) -> int:
    if not facts.history:
        return 0
    return max(facts.history[-1].number, len(facts.history))


# --- judging history -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Judged:
    record: IterationRecord
    outcome: Outcome
    reason: str
    trouble: ApiTrouble | None

    @property
    def waiting(self) -> bool:
        """Service trouble, not the work's: neither counts for the gutter nor breaks a streak."""
        return (
            self.outcome is Outcome.API_ERROR
            and self.trouble is not None
            and self.trouble.kind in WAITING_KINDS
            and not self.record.made_progress
        )


def _judge(record: IterationRecord, done_when_passed: bool | None = None) -> _Judged:
    outcome, reason = classify(record, done_when_passed)
    trouble = classify_api_trouble(record) if outcome is Outcome.API_ERROR else None
    return _Judged(record, outcome, reason, trouble)


def _judged_history(facts: RunFacts) -> list[_Judged]:
    """Newest first; the last iteration judged with the run's ``done_when_passed``."""
    history = facts.history
    if not history:
        return []
    judged = [_judge(history[-1], facts.done_when_passed)]
    judged.extend(_judge(record) for record in reversed(history[:-1]))
    return judged


@dataclass(frozen=True)
class _Streaks:
    no_progress: list[_Judged]  # newest first
    same_failure: list[_Judged]
    fingerprint: str | None
    crashes: list[_Judged]
    denials: list[_Judged]
    denied: tuple[str, ...]  # tools denied in every iteration of the denial streak
    waits: int  # trailing iterations that ended on service trouble


def _streaks(judged: list[_Judged], escalated_at: int | None) -> _Streaks:
    def counted(item: _Judged) -> bool:
        return escalated_at is None or item.record.number > escalated_at

    no_progress: list[_Judged] = []
    for item in judged:
        if not counted(item) or item.record.made_progress:
            break
        if not item.waiting:
            no_progress.append(item)

    same: list[_Judged] = []
    fingerprint = failure_fingerprint(no_progress[0].record) if no_progress else None
    if fingerprint is not None:
        for item in no_progress:
            if failure_fingerprint(item.record) != fingerprint:
                break
            same.append(item)

    denials: list[_Judged] = []
    denied: set[str] | None = None
    for item in no_progress:
        tools = set(denied_tools(item.record))
        if item.outcome is not Outcome.NO_PROGRESS or not tools:
            break
        common = tools if denied is None else denied & tools
        if not common:
            break
        denied = common
        denials.append(item)
    order = denied_tools(denials[0].record) if denials else []
    denied_order = tuple(tool for tool in order if denied and tool in denied)

    crashes: list[_Judged] = []
    for item in judged:
        if item.waiting:
            continue
        if not is_crash(item.record, item.outcome):
            break
        crashes.append(item)

    waits = 0
    for item in judged:
        if not item.waiting:
            break
        waits += 1
    return _Streaks(no_progress, same, fingerprint, crashes, denials, denied_order, waits)


def gutter_state(facts: RunFacts, limits: Limits) -> GutterState:
    """The gutter counters and the most advanced one's reason, for state.json."""
    streaks = _streaks(_judged_history(facts), facts.escalated_at)
    n = limits.gutter_iterations
    candidates: list[tuple[int, str]] = []
    if streaks.denials:
        tools = ", ".join(streaks.denied)
        candidates.append(
            (
                len(streaks.denials),
                f"permission for {tools} denied {len(streaks.denials)} of {n} times in a row",
            )
        )
    if streaks.crashes:
        candidates.append(
            (
                len(streaks.crashes),
                f"{len(streaks.crashes)} of {n} workers in a "
                f"row died within {CRASH_WINDOW_S:.0f} s of spawn",
            )
        )
    if len(streaks.same_failure) >= 2:
        error = _quote(streaks.same_failure[0].record)
        candidates.append(
            (
                len(streaks.same_failure),
                f"the same failure {len(streaks.same_failure)} of {n} times in a row: {error}",
            )
        )
    if streaks.no_progress:
        candidates.append(
            (
                len(streaks.no_progress),
                f"{len(streaks.no_progress)} of {n} iterations in a row without progress",
            )
        )
    reason = max(candidates, key=lambda c: c[0])[1] if candidates else None
    return GutterState(
        no_progress=len(streaks.no_progress),
        same_failure=len(streaks.same_failure) if streaks.fingerprint else 0,
        crashes=len(streaks.crashes),
        denials=len(streaks.denials),
        reason=reason,
    )


def _quote(record: IterationRecord, limit: int = 120) -> str:
    text = " ".join((last_error(record) or "").split())
    return f'"{text if len(text) <= limit else text[: limit - 1] + "…"}"'


# --- the graded gutter's note for the next worker --------------------------------------------


def _note_after(limits: Limits) -> int:
    return max(1, min(2, limits.gutter_iterations - 1))


def _prompt_note(streaks: _Streaks, limits: Limits) -> str | None:
    """A short diagnosis for the next worker once iterations stop making progress."""
    count = len(streaks.no_progress)
    if count < _note_after(limits):
        return None
    n = limits.gutter_iterations
    head = streaks.no_progress[0].record.git_after.head
    at = f" (HEAD still {head[:12]})" if head else ""
    lines = [
        f"Note from the supervisor: the last {count} iterations changed nothing in git{at}.",
        "What they ended with:",
    ]
    for item in reversed(streaks.no_progress[:3]):
        lines.append(f"- iteration {item.record.number}: {item.reason}")
    if len(streaks.same_failure) >= 2:
        lines.append(
            f"The same error repeated {len(streaks.same_failure)} times: "
            f"{_quote(streaks.same_failure[0].record)}."
        )
    if streaks.denials:
        lines.append(
            f"These tools were denied and will stay denied: {', '.join(streaks.denied)}; "
            f"find another way."
        )
    lines.append(
        "Try a different approach from the ones above. If you cannot go on without a human, "
        "end with the line UNATTENDED_BLOCKED: <reason>. "
        f"After {n} iterations without progress the run stops as stuck."
    )
    return "\n".join(lines)


# --- verdict builders ------------------------------------------------------------------------


def _caps(facts: RunFacts, limits: Limits, outcome: Outcome | None) -> Verdict | None:
    """CAPPED when iterations, hours, cost or tokens are used up, else None."""
    used = iterations_used(facts)
    if used >= limits.max_iterations:
        return Verdict(
            VerdictKind.CAPPED,
            f"iteration cap: {used} of {limits.max_iterations} iterations used",
            outcome,
        )
    if facts.now >= limits.deadline:
        return Verdict(
            VerdictKind.CAPPED, f"hours cap: deadline {_when(limits.deadline)} reached", outcome
        )
    if alert_level(facts.cost_usd, limits.max_cost_usd) == "stop":
        cap = limits.max_cost_usd or 0.0
        return Verdict(
            VerdictKind.CAPPED,
            f"cost cap: ${facts.cost_usd:.2f} of ${cap:.2f} spent "
            f"({facts.cost_usd / cap * 100:.0f}%, the run stops at 95%)",
            outcome,
        )
    if alert_level(facts.tokens, limits.max_tokens) == "stop":
        cap_tokens = limits.max_tokens or 0
        return Verdict(
            VerdictKind.CAPPED,
            f"token cap: {facts.tokens:,} of {cap_tokens:,} tokens used "
            f"({facts.tokens / cap_tokens * 100:.0f}%, the run stops at 95%)",
            outcome,
        )
    return None


def _wait(
    until: float,
    reason: str,
    limits: Limits,
    outcome: Outcome | None,
    note: str | None = None,
    escalate: bool = False,
) -> Verdict:
    """WAIT until ``until``, or CAPPED when that is at or past the deadline."""
    if until >= limits.deadline:
        return Verdict(
            VerdictKind.CAPPED,
            f"{reason}; waiting until {_when(until)} would pass the deadline "
            f"{_when(limits.deadline)}",
            outcome,
        )
    return Verdict(VerdictKind.WAIT, reason, outcome, until, note, escalate)


def _api_wait(
    facts: RunFacts,
    limits: Limits,
    last: _Judged,
    streaks: _Streaks,
    note: str | None,
    escalate: bool,
) -> Verdict | None:
    trouble = last.trouble
    if trouble is None or trouble.kind not in WAITING_KINDS:
        return None
    attempt = max(1, streaks.waits)
    seed = last.record.number
    what = f"API {trouble.kind.replace('_', ' ')}"
    if trouble.kind == "usage_limit":
        which = f" ({trouble.limit_type})" if trouble.limit_type else ""
        if limits.on_limit == "stop":
            return Verdict(
                VerdictKind.CAPPED,
                f"usage limit{which} reached and --on-limit is stop: {trouble.detail}",
                last.outcome,
            )
        if trouble.resets_at is not None and trouble.resets_at + limits.limit_margin_s > facts.now:
            until = trouble.resets_at + limits.limit_margin_s
            if until >= limits.deadline:
                return Verdict(
                    VerdictKind.CAPPED,
                    f"usage limit{which}: it resets at {_when(trouble.resets_at)}, after the "
                    f"deadline {_when(limits.deadline)}",
                    last.outcome,
                )
            return _wait(
                until,
                f"usage limit{which}: waiting until {_when(until)} (reset "
                f"{_when(trouble.resets_at)} + {limits.limit_margin_s:.0f}s margin)",
                limits,
                last.outcome,
                note,
                escalate,
            )
        delay = api_backoff(attempt, limits.api_backoff_s, seed)
        known = "already past" if trouble.resets_at is not None else "unknown"
        return _wait(
            facts.now + delay,
            f"usage limit{which}, reset time {known}: retrying in {_seconds(delay)}",
            limits,
            last.outcome,
            note,
            escalate,
        )
    delay = api_backoff(attempt, limits.api_backoff_s, seed)
    return _wait(
        facts.now + delay,
        f"{what} ({trouble.detail}): backing off {_seconds(delay)} (attempt {attempt})",
        limits,
        last.outcome,
        note,
        escalate,
    )


def _gutter_verdict(streaks: _Streaks, limits: Limits, outcome: Outcome) -> Verdict | None:
    n = limits.gutter_iterations
    if len(streaks.denials) >= n:
        tools = ", ".join(streaks.denied)
        return Verdict(
            VerdictKind.BLOCKED,
            f"the worker needs permission to run {tools} (denied {len(streaks.denials)} times "
            f"in a row): allow it with --allowed-tools or a permission mode",
            outcome,
        )
    if len(streaks.crashes) >= n:
        return Verdict(
            VerdictKind.STUCK,
            f"crash loop: {len(streaks.crashes)} workers in a row died within "
            f"{CRASH_WINDOW_S:.0f} s of spawn (last: {streaks.crashes[0].reason})",
            outcome,
        )
    if len(streaks.same_failure) >= n:
        return Verdict(
            VerdictKind.STUCK,
            f"the same failure {len(streaks.same_failure)} times in a row: "
            f"{_quote(streaks.same_failure[0].record)}",
            outcome,
        )
    if len(streaks.no_progress) >= n:
        return Verdict(
            VerdictKind.STUCK,
            f"no progress in {len(streaks.no_progress)} iterations in a row (HEAD and work tree "
            f"unchanged; last: {streaks.no_progress[0].reason})",
            outcome,
        )
    return None


def decide(facts: RunFacts, limits: Limits) -> Verdict:
    """The verdict after an iteration (rule order in the module doc)."""
    judged = _judged_history(facts)
    if not judged:
        if facts.stop_requested:
            return Verdict(VerdictKind.STOPPED, "stop requested")
        capped = _caps(facts, limits, None)
        return capped or Verdict(VerdictKind.CONTINUE, "no iteration yet")
    last = judged[0]
    outcome = last.outcome
    fatal = fatal_reason(last.record)
    if fatal is not None:
        return Verdict(VerdictKind.FAILED, fatal, outcome)
    if outcome is Outcome.DONE:
        return Verdict(VerdictKind.DONE, last.reason, outcome)
    if outcome is Outcome.BLOCKED:
        return Verdict(VerdictKind.BLOCKED, last.reason, outcome)
    if facts.stop_requested:
        return Verdict(VerdictKind.STOPPED, "stop requested", outcome)
    capped = _caps(facts, limits, outcome)
    if capped is not None:
        return capped

    streaks = _streaks(judged, facts.escalated_at)
    note = _prompt_note(streaks, limits)
    escalate = (
        limits.escalate_after is not None
        and facts.escalated_at is None
        and len(streaks.no_progress) >= limits.escalate_after
    )
    waited = _api_wait(facts, limits, last, streaks, note, escalate)
    if waited is not None:
        return waited
    stuck = _gutter_verdict(streaks, limits, outcome)
    if stuck is not None:
        return stuck
    if streaks.crashes:
        attempt = len(streaks.crashes)
        delay = crash_backoff(attempt, limits.crash_backoff_s)
        return _wait(
            facts.now + delay,
            f"{last.reason}; worker died within {CRASH_WINDOW_S:.0f} s of spawn "
            f"({attempt} of {limits.gutter_iterations}): relaunching in {_seconds(delay)}",
            limits,
            outcome,
            note,
            escalate,
        )
    if last.trouble is not None and last.trouble.kind == "context_overflow":
        return Verdict(
            VerdictKind.CONTINUE,
            f"{last.reason}: the next worker starts a fresh session",
            outcome,
            None,
            note,
            escalate,
        )
    if escalate:
        reason = (
            f"{last.reason}; escalating the model after {len(streaks.no_progress)} iterations "
            f"without progress"
        )
    else:
        reason = last.reason
    return Verdict(VerdictKind.CONTINUE, reason, outcome, None, note, escalate)


# --- before a spawn --------------------------------------------------------------------------


def storm_wait_until(now: float, launch_times: Sequence[float], per_minute: int) -> float | None:
    """When the next launch may happen without exceeding ``per_minute`` launches in any 60 s
    (window ``(t - 60, t]``), or None when a launch may happen now."""
    recent = sorted(t for t in launch_times if now - STORM_WINDOW_S < t <= now)
    if len(recent) < per_minute:
        return None
    return recent[-per_minute] + STORM_WINDOW_S


def _runway_cap(facts: RunFacts, limits: Limits, estimate: RunwayEstimate) -> Verdict | None:
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
            f"hours cap: next iteration needs ~{_seconds(estimate.duration_s)}, "
            f"{_seconds(limits.deadline - facts.now)} left before the deadline "
            f"{_when(limits.deadline)} ({estimate.basis})",
        )
    return None


def _quota_wait(facts: RunFacts, limits: Limits) -> Verdict | None:
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
            continue  # that window has reset since the reading
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
    when = f"its reset at {_when(until - limits.limit_margin_s)}" if known else "an unknown reset"
    return _wait(
        until,
        f"quota pacing: {window} window at {pct:.0f}% (max {limits.max_quota_pct:g}%), "
        f"waiting for {when}",
        limits,
        None,
    )


def gate(
    facts: RunFacts,
    limits: Limits,
    launch_times: Sequence[float],
    estimate: RunwayEstimate | None,
) -> Verdict:
    """May the next worker be spawned now? Order: stop → iteration/hours/cost/token caps →
    runway (cost, tokens; hours only from a high-confidence estimate) → quota pacing →
    storm breaker → CONTINUE."""
    if facts.stop_requested:
        return Verdict(VerdictKind.STOPPED, "stop requested")
    capped = _caps(facts, limits, None)
    if capped is not None:
        return capped
    if estimate is not None:
        short = _runway_cap(facts, limits, estimate)
        if short is not None:
            return short
    paced = _quota_wait(facts, limits)
    if paced is not None:
        return paced
    slot = storm_wait_until(facts.now, launch_times, limits.max_launches_per_minute)
    if slot is not None:
        return _wait(
            slot,
            f"storm breaker: {limits.max_launches_per_minute} launches in the last minute, "
            f"next at {_when(slot)}",
            limits,
            None,
        )
    return Verdict(VerdictKind.CONTINUE, f"launching iteration {iterations_used(facts) + 1}")
