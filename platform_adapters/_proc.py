"""Bounded child processes for the adapters: own process group, no inherited fds, a deadline.

The adapters sit below `supervisor/` (which has the general process helper), so they carry this
small stdlib copy: every helper command (systemctl, notify-send, a user's notify command) runs in
a session of its own, so a Ctrl-C in the daemon's terminal never reaches it, and a helper that
overstays its deadline is killed with its whole group and reaped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

SERVICE_ENV_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
# Set by ``supervisor.entry`` for our own start-up, never the user's: children do not inherit it.
OWN_ENV_VARS = ("PYDANTIC_DISABLE_PLUGINS",)


def clean_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without the variables no child may inherit: the service
    manager's (systemd would take a child's messages for the daemon's) and our own."""
    env = dict(os.environ if environ is None else environ)
    for key in (*SERVICE_ENV_VARS, *OWN_ENV_VARS):
        env.pop(key, None)
    return env


@dataclass
class Outcome:
    """How a bounded child ended: `returncode` None means it was killed at the deadline."""

    argv: Sequence[str] | str
    returncode: int | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def last_error_line(self) -> str:
        """The last non-empty stderr (else stdout) line, for a one-line log message."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1][:300]
        return ""


class Running:
    """A started child whose output goes to temp files, so no pipe can block us or it."""

    def __init__(
        self,
        argv: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        shell: bool = False,
    ) -> None:
        self.argv = argv
        self._out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                argv,
                shell=shell,
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=self._err,
                env=dict(env) if env is not None else clean_env(),
                cwd=cwd,
                close_fds=True,
                start_new_session=True,
            )
        except BaseException:
            self._close_files()
            raise

    def finish(self, deadline: float) -> Outcome:
        """Wait until the monotonic `deadline`; past it kill the whole group. Always reaps."""
        returncode: int | None
        try:
            returncode = self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            returncode = None
        kill_group(self.proc.pid)  # also ends helpers the child left behind in its group
        self.proc.wait()
        outcome = Outcome(self.argv, returncode, self._read(self._out), self._read(self._err))
        self._close_files()
        return outcome

    @staticmethod
    def _read(handle: IO[bytes]) -> str:
        handle.seek(0)
        return handle.read(1 << 16).decode("utf-8", "replace")

    def _close_files(self) -> None:
        self._out.close()
        self._err.close()


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a process group, ignoring that it may be gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_bounded(
    argv: Sequence[str] | str,
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    shell: bool = False,
) -> Outcome:
    """Run a helper to completion or kill it at `timeout_s`; OSError when it cannot start."""
    return Running(argv, env=env, cwd=cwd, shell=shell).finish(time.monotonic() + timeout_s)
