"""Signal handlers that only set flags; the loop reads them and acts (as huey does).

First SIGTERM/SIGINT: stop now (end the worker tree gracefully, then exit ``stopped``).
A second one during the grace period: SIGKILL the tree at once.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field


@dataclass
class SignalFlags:
    stop_now: bool = False
    escalate: bool = False
    child_exited: bool = True  # SIGCHLD seen: there may be adopted orphans to reap
    hung_up: bool = False  # SIGHUP: the terminal of `start --foreground` went away
    received: list[str] = field(default_factory=list)

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signal.Signals(signum).name)
        if self.stop_now:
            self.escalate = True
        self.stop_now = True

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        # A detached daemon, or `--foreground` whose terminal closed, must not die with the
        # shell. A handler rather than SIG_IGN, which every child would inherit.
        signal.signal(signal.SIGHUP, self._hangup)
        signal.signal(signal.SIGCHLD, self._child)

    def _hangup(self, _signum: int, _frame: object) -> None:
        self.hung_up = True

    def _child(self, _signum: int, _frame: object) -> None:
        self.child_exited = True

    @property
    def first_signal(self) -> str | None:
        return self.received[0] if self.received else None
