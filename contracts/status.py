"""Run statuses and iteration outcomes (plain enums: cheap to import)."""

from __future__ import annotations

from enum import StrEnum

from unattended.contracts.exit_codes import ExitCode


class RunStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"  # a worker is alive
    WAITING = "waiting"  # between workers: backoff, usage limit
    DONE = "done"
    BLOCKED = "blocked"
    STUCK = "stuck"
    CAPPED = "capped"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_EXIT_CODES

    @property
    def exit_code(self) -> ExitCode:
        return TERMINAL_EXIT_CODES[self]


TERMINAL_EXIT_CODES: dict[RunStatus, ExitCode] = {
    RunStatus.DONE: ExitCode.DONE,
    RunStatus.BLOCKED: ExitCode.BLOCKED,
    RunStatus.STUCK: ExitCode.STUCK,
    RunStatus.CAPPED: ExitCode.CAPPED,
    RunStatus.STOPPED: ExitCode.STOPPED,
    RunStatus.FAILED: ExitCode.FAILED,
}

# What `status` reports besides RunStatus: the state says alive but the daemon is gone,
# or the project never ran.
CRASHED = "crashed"
NONE = "none"


class Outcome(StrEnum):
    """How one iteration ended, as judged by the supervisor (never by the worker's prose)."""

    DONE = "done"
    BLOCKED = "blocked"
    PROGRESS = "progress"
    NO_PROGRESS = "no-progress"
    FAILED = "failed"
    TIMEOUT = "timeout"
    STALLED = "stalled"
    API_ERROR = "api-error"
    CRASHED = "crashed"  # the daemon died while this worker ran: priced and counted on resume
