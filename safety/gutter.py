"""The gutter: noticing that a run has stopped getting anywhere (issue 4, "Between iterations").

Four streaks are read from the history, newest first:

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

from dataclasses import dataclass

from unattended.contracts.iteration import IterationRecord
from unattended.contracts.state import GutterState
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


def judged_history(facts: RunFacts) -> list[Judged]:
    """Newest first; the last iteration judged with the run's ``done_when_passed``."""
    history = facts.history
    if not history:
        return []
    judged = [judge(history[-1], facts.done_when_passed)]
    judged.extend(judge(record) for record in reversed(history[:-1]))
    return judged


@dataclass(frozen=True)
class Streaks:
    no_progress: list[Judged]  # newest first
    same_failure: list[Judged]
    fingerprint: str | None
    crashes: list[Judged]
    denials: list[Judged]
    denied: tuple[str, ...]  # tools denied in every iteration of the denial streak
    waits: int  # trailing iterations that ended on service trouble


def _counted(judged: list[Judged], escalated_at: int | None) -> list[Judged]:
    """The iterations the gutter may count: after the escalation, up to the last progress."""
    kept: list[Judged] = []
    for item in judged:
        if escalated_at is not None and item.record.number <= escalated_at:
            break
        if item.record.made_progress:
            break
        if not item.waiting:
            kept.append(item)
    return kept


def streaks(judged: list[Judged], escalated_at: int | None) -> Streaks:
    """Every gutter streak of a newest-first judged history (see the module doc)."""
    no_progress = _counted(judged, escalated_at)

    same: list[Judged] = []
    fingerprint = failure_fingerprint(no_progress[0].record) if no_progress else None
    if fingerprint is not None:
        for item in no_progress:
            if failure_fingerprint(item.record) != fingerprint:
                break
            same.append(item)

    denials: list[Judged] = []
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

    crashes: list[Judged] = []
    for item in no_progress:
        if not is_crash(item.record, item.outcome):
            break
        crashes.append(item)

    waits = 0
    for item in judged:
        if not item.waiting:
            break
        waits += 1
    return Streaks(no_progress, same, fingerprint, crashes, denials, denied_order, waits)


def quote(record: IterationRecord, limit: int = 120) -> str:
    return f'"{short(last_error(record), limit)}"'


def gutter_state(facts: RunFacts, limits: Limits) -> GutterState:
    """The gutter counters and the most advanced one's reason, for state.json."""
    found = streaks(judged_history(facts), facts.escalated_at)
    n = limits.gutter_iterations
    candidates: list[tuple[int, str]] = []
    if found.denials:
        tools = ", ".join(found.denied)
        candidates.append(
            (len(found.denials), f"permission for {tools} denied {len(found.denials)} of {n} times")
        )
    if found.crashes:
        candidates.append(
            (
                len(found.crashes),
                f"{len(found.crashes)} of {n} workers in a row died within "
                f"{CRASH_WINDOW_S:.0f} s of spawn",
            )
        )
    if len(found.same_failure) >= 2:
        candidates.append(
            (
                len(found.same_failure),
                f"the same failure {len(found.same_failure)} of {n} times in a row: "
                f"{quote(found.same_failure[0].record)}",
            )
        )
    if found.no_progress:
        candidates.append(
            (
                len(found.no_progress),
                f"{len(found.no_progress)} of {n} iterations in a row without progress",
            )
        )
    # On a tie the first (most specific) candidate wins: max() keeps the first maximum.
    reason = max(candidates, key=lambda c: c[0])[1] if candidates else None
    return GutterState(
        no_progress=len(found.no_progress),
        same_failure=len(found.same_failure),
        crashes=len(found.crashes),
        denials=len(found.denials),
        reason=reason,
    )


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
    count = len(found.no_progress)
    if count >= note_after(limits):
        head = found.no_progress[0].record.git_after.head
        at = f" (HEAD still {head[:12]})" if head else ""
        lines += [
            f"Note from the supervisor: the last {count} iterations changed nothing in git{at}.",
            "What they ended with:",
        ]
        lines += [
            f"- iteration {item.record.number}: {item.reason}"
            for item in reversed(found.no_progress[:3])
        ]
        if len(found.same_failure) >= 2:
            lines.append(
                f"The same error repeated {len(found.same_failure)} times: "
                f"{quote(found.same_failure[0].record)}."
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
    if len(found.denials) >= n:
        tools = ", ".join(found.denied)
        return Verdict(
            VerdictKind.BLOCKED,
            f"the worker needs permission to run {tools} (denied {len(found.denials)} times "
            f"in a row): allow it with --allowed-tools or a permission mode",
            outcome,
        )
    if len(found.crashes) >= n:
        return Verdict(
            VerdictKind.STUCK,
            f"crash loop: {len(found.crashes)} workers in a row died within "
            f"{CRASH_WINDOW_S:.0f} s of spawn (last: {found.crashes[0].reason})",
            outcome,
        )
    if len(found.same_failure) >= n:
        return Verdict(
            VerdictKind.STUCK,
            f"the same failure {len(found.same_failure)} times in a row: "
            f"{quote(found.same_failure[0].record)}",
            outcome,
        )
    if len(found.no_progress) >= n:
        return Verdict(
            VerdictKind.STUCK,
            f"no progress in {len(found.no_progress)} iterations in a row (HEAD and work tree "
            f"unchanged; last: {found.no_progress[0].reason})",
            outcome,
        )
    return None
