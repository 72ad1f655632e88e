"""The answer every rule gives: what to do next, and a reason a person can read in run.log."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from unattended.contracts.status import Outcome, RunStatus


class VerdictKind(StrEnum):
    CONTINUE = "continue"  # spawn the next worker now
    WAIT = "wait"  # sleep until wait_until (backoff, usage limit, storm breaker), then re-ask
    DONE = "done"
    BLOCKED = "blocked"
    STUCK = "stuck"
    CAPPED = "capped"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self not in (VerdictKind.CONTINUE, VerdictKind.WAIT)

    @property
    def status(self) -> RunStatus:
        if self is VerdictKind.CONTINUE:
            return RunStatus.RUNNING
        if self is VerdictKind.WAIT:
            return RunStatus.WAITING
        return RunStatus(self.value)


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    reason: str
    outcome: Outcome | None = None  # the last iteration's classification, when there was one
    wait_until: float | None = None  # epoch seconds, for WAIT
    prompt_note: str | None = None  # a diagnosis for the next worker's prompt (graded gutter)
    escalate: bool = False  # switch later iterations to the stronger model

    @property
    def terminal(self) -> bool:
        return self.kind.terminal
