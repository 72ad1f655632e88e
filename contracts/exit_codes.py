"""The exit-code table shared by the daemon, ``start --foreground`` and service units.

A service manager restarts only on 1 (a bug); every other code is a deliberate ending.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    DONE = 0
    INTERNAL_ERROR = 1
    USAGE = 2
    CAPPED = 3
    BLOCKED = 4
    STUCK = 5
    STOPPED = 6
    FAILED = 7


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.DONE: "done: the worker reported the task complete (or --done-when passed)",
    ExitCode.INTERNAL_ERROR: "internal error: a bug in unattended (the only code to restart on)",
    ExitCode.USAGE: "usage or preflight error: nothing was started",
    ExitCode.CAPPED: "capped: hours, iterations, tokens, money or usage limit reached",
    ExitCode.BLOCKED: "blocked: the worker needs a human",
    ExitCode.STUCK: "stuck: no progress, repeated failure, or a crash loop",
    ExitCode.STOPPED: "stopped on request (stop, sentinel file, or signal)",
    ExitCode.FAILED: "failed: unrecoverable (authentication, missing claude binary, full disk)",
}

# Codes a service unit must not restart on: every deliberate ending.
DELIBERATE_EXIT_CODES: tuple[int, ...] = tuple(
    int(c) for c in ExitCode if c not in (ExitCode.DONE, ExitCode.INTERNAL_ERROR)
)
