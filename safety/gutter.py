"""The gutter: noticing that a run has stopped getting anywhere (issue 4, "Between iterations").

Four streaks, kept running one iteration at a time (:func:`advance`; state.json keeps them, so
a resumed run goes on counting), newest first:

- **no progress**: iterations that left git HEAD and the work-tree hash unchanged (progress is
  what git shows, never what the worker says);
- **same failure**: inside that streak, the same normalised failure fingerprint;
- **denials**: inside that streak, no-progress iterations that were refused the same tool(s);
- **crashes**: workers that died by themselves within 10 s of spawn.

Iterations that ended on service trouble (rate limit, overload, 5xx, network, usage limit)
and changed nothing are about the service, not the work: they are skipped, neither counting
nor breaking a streak. Any iteration with git progress ends every streak, and so does a model
escalation (the stronger model gets its full chance). Reaching ``gutter_iterations`` on a
streak ends the run; before that, the next worker's prompt carries a short diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from unattended.contracts.iteration import IterationRecord
from unattended.contracts.state import GutterSeen, GutterState
from unattended.contracts.status import Outcome
from unattended.safety.api_errors import WAITING_KINDS, ApiTrouble, classify_api_trouble
from unattended.safety.classify import (
    CRASH_WINDOW_S,
    classify,
    denied_tools,
    failure_fingerprint,
    is_crash,
    last_error,
)
from unattended.safety.limits import Limits, RunFacts
from unattended.safety.markers import ends_with_question, find_marker
from unattended.safety.verdict import Verdict, VerdictKind
from unattended.safety.wording import short


@dataclass(frozen=True)
class Judged:
    """One iteration with its classification (computed once, read by every rule)."""

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


def judge(record: IterationRecord, done_when_passed: bool | None = None) -> Judged:
    outcome, reason = classify(record, done_when_passed)
    trouble = classify_api_trouble(record) if outcome is Outcome.API_ERROR else None
    return Judged(record, outcome, reason, trouble)


@dataclass(frozen=True)
class Seen:
    """What the gutter keeps of one counted iteration: enough for its verdicts and notes."""

    number: int
    reason: str
    head: str | None  # git HEAD after it
    error: str | None  # its last error line, quoted in "the same failure" wording


@dataclass(frozen=True)
class Streaks:
    """The running gutter streaks (see the module doc), advanced one iteration at a time by
    :func:`advance`, so judging a run costs the same at iteration 10 and at 10,000. Every
    streak but ``waits`` ends the run when it reaches ``gutter_iterations``, so what is kept is
    bounded too."""

    no_progress: int = 0
    same_failure: int = 0
    fingerprint: str | None = None  # of the newest counted iteration
    crashes: int = 0
    denials: int = 0
    denied: tuple[str, ...] = ()  # tools denied in every iteration of the denial streak
    denial_sets: tuple[tuple[str, ...], ...] = ()  # each denial-streak iteration's, newest first
    waits: int = 0  # trailing iterations that ended on service trouble
    recent: tuple[Seen, ...] = ()  # the newest counted iterations (at most RECENT), newest first


RECENT = 3


def advance(prev: Streaks, item: Judged) -> Streaks:
    """The streaks once ``item`` (the newest iteration) has joined them."""
    if item.waiting:  # service trouble: neither counts nor breaks a streak
        return replace(prev, waits=prev.waits + 1)
    if item.record.made_progress:
        return Streaks()
    record = item.record
    fingerprint = failure_fingerprint(record)
    same = 0
    if fingerprint is not None:
        same = prev.same_failure + 1 if fingerprint == prev.fingerprint else 1
    denial_sets: list[tuple[str, ...]] = []
    common: set[str] | None = None
    tools = tuple(denied_tools(record))
    if item.outcome is Outcome.NO_PROGRESS and tools:
        for each in (tools, *prev.denial_sets):
            narrowed = set(each) if common is None else common & set(each)
            if not narrowed:
                break
            common = narrowed
            denial_sets.append(each)
    seen = Seen(record.number, item.reason, record.git_after.head, last_error(record))
    return Streaks(
        no_progress=prev.no_progress + 1,
        same_failure=same,
        fingerprint=fingerprint,
        crashes=prev.crashes + 1 if is_crash(record, item.outcome) else 0,
        denials=len(denial_sets),
        denied=tuple(t for t in tools if common and t in common),
        denial_sets=tuple(denial_sets),
        waits=0,
        recent=(seen, *prev.recent[: RECENT - 1]),
    )


def after_escalation(prev: Streaks) -> Streaks:
    """A stronger model gets its full chance: every streak but the service waits restarts."""
    return Streaks(waits=prev.waits)


def streaks_of(facts: RunFacts) -> Streaks:
    """The streaks of a whole history (oldest first; the last iteration judged with the run's
    ``done_when_passed``): for callers without running streaks. O(n) in the history."""
    found = Streaks()
    history = facts.history
    for i, record in enumerate(history):
        done_when = facts.done_when_passed if i == len(history) - 1 else None
        found = advance(found, judge(record, done_when))
        if facts.escalated_at is not None and record.number == facts.escalated_at:
            found = after_escalation(found)
    return found


def current_streaks(facts: RunFacts) -> Streaks:
    """The running streaks the loop passed in, else those of the history."""
    return facts.streaks if facts.streaks is not None else streaks_of(facts)


def to_state(found: Streaks, limits: Limits) -> GutterState:
    """The streaks as state.json keeps them (a resumed run goes on counting from there)."""
    return GutterState(
        no_progress=found.no_progress,
        same_failure=found.same_failure,
        crashes=found.crashes,
        denials=found.denials,
        reason=gutter_reason(found, limits),
        fingerprint=found.fingerprint,
        denied=list(found.denied),
        denial_sets=[list(each) for each in found.denial_sets],
        waits=found.waits,
        recent=[
            GutterSeen(number=s.number, reason=s.reason, head=s.head, error=s.error)
            for s in found.recent
        ],  # fmt: skip
    )


def from_state(saved: GutterState) -> Streaks:
    return Streaks(
        no_progress=saved.no_progress,
        same_failure=saved.same_failure,
        fingerprint=saved.fingerprint,
        crashes=saved.crashes,
        denials=saved.denials,
        denied=tuple(saved.denied),
        denial_sets=tuple(tuple(each) for each in saved.denial_sets),
        waits=saved.waits,
        recent=tuple(Seen(s.number, s.reason, s.head, s.error) for s in saved.recent),
    )


def quote(seen: Seen, limit: int = 120) -> str:
    return f'"{short(seen.error, limit)}"'


def gutter_state(facts: RunFacts, limits: Limits) -> GutterState:
    """The gutter counters and the most advanced one's reason, for state.json."""
    return to_state(current_streaks(facts), limits)


def gutter_reason(found: Streaks, limits: Limits) -> str | None:
    """The most advanced streak's reason (None when no streak has begun)."""
    n = limits.gutter_iterations
    candidates: list[tuple[int, str]] = []
    if found.denials:
        tools = ", ".join(found.denied)
        candidates.append(
            (found.denials, f"permission for {tools} denied {found.denials} of {n} times")
        )
    if found.crashes:
        candidates.append(
            (
                found.crashes,
                f"{found.crashes} of {n} workers in a row died within "
                f"{CRASH_WINDOW_S:.0f} s of spawn",
            )
        )
    if found.same_failure >= 2:
        candidates.append(
            (
                found.same_failure,
                f"the same failure {found.same_failure} of {n} times in a row: "
                f"{quote(found.recent[0])}",
            )
        )
    if found.no_progress:
        candidates.append(
            (found.no_progress, f"{found.no_progress} of {n} iterations in a row without progress")
        )
    # On a tie the first (most specific) candidate wins: max() keeps the first maximum.
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def note_after(limits: Limits) -> int:
    """No-progress iterations after which the next prompt carries a diagnosis (1 or 2)."""
    return max(1, min(2, limits.gutter_iterations - 1))


def _asked_question(item: Judged) -> bool:
    text = item.record.result_text
    return find_marker(text) is None and ends_with_question(text)


def prompt_note(found: Streaks, limits: Limits, last: Judged | None = None) -> str | None:
    """A short diagnosis for the next worker: once iterations stop making progress (the graded
    gutter), or right after a worker ended by asking a question nobody will answer."""
    lines: list[str] = []
    count = found.no_progress
    if count >= note_after(limits):
        head = found.recent[0].head
        at = f" (HEAD still {head[:12]})" if head else ""
        lines += [
            f"Note from the supervisor: the last {count} iterations changed nothing in git{at}.",
            "What they ended with:",
        ]
        lines += [f"- iteration {seen.number}: {seen.reason}" for seen in reversed(found.recent)]
        if found.same_failure >= 2:
            lines.append(
                f"The same error repeated {found.same_failure} times: {quote(found.recent[0])}."
            )
        if found.denials:
            lines.append(
                f"These tools were denied and will stay denied: {', '.join(found.denied)}; "
                f"find another way."
            )
    if last is not None and _asked_question(last):
        lines.append(
            "The previous worker ended by asking a question, but nobody is there to answer: "
            "make the decision yourself and carry on, or end with the line "
            "UNATTENDED_BLOCKED: <reason> if only a human can decide."
        )
    if not lines:
        return None
    if count >= note_after(limits):
        lines.append(
            "Try a different approach from the ones above. If you cannot go on without a human, "
            "end with the line UNATTENDED_BLOCKED: <reason>. "
            f"After {limits.gutter_iterations} iterations without progress the run stops as "
            f"stuck."
        )
    return "\n".join(lines)


def gutter_verdict(found: Streaks, limits: Limits, outcome: Outcome) -> Verdict | None:
    """BLOCKED or STUCK once a streak reaches ``gutter_iterations``, else None."""
    n = limits.gutter_iterations
    if found.denials >= n:
        tools = ", ".join(found.denied)
        return Verdict(
            VerdictKind.BLOCKED,
            f"the worker needs permission to run {tools} (denied {found.denials} times "
            f"in a row): allow it with --allowed-tools or a permission mode",
            outcome,
        )
    if found.crashes >= n:
        return Verdict(
            VerdictKind.STUCK,
            f"crash loop: {found.crashes} workers in a row died within "
            f"{CRASH_WINDOW_S:.0f} s of spawn (last: {found.recent[0].reason})",
            outcome,
        )
    if found.same_failure >= n:
        return Verdict(
            VerdictKind.STUCK,
            f"the same failure {found.same_failure} times in a row: {quote(found.recent[0])}",
            outcome,
        )
    if found.no_progress >= n:
        return Verdict(
            VerdictKind.STUCK,
            f"no progress in {found.no_progress} iterations in a row (HEAD and work tree "
            f"unchanged; last: {found.recent[0].reason})",
            outcome,
        )
    return None
