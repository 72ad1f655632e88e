"""Tell the user how a run ended (or that it waits on a usage limit): desktop and a user command.

Desktop: `notify-send` on Linux, `osascript` on macOS, when present. The optional `notify_cmd`
runs through the shell with UNATTENDED_STATUS, _REASON, _PROJECT, _ITERATION and _COST_USD in
its environment (e.g. `curl` to a chat webhook). Every helper runs at the same time through the
process module, and is ended with its whole tree at the deadline; whatever it started is ended
when it exits, even a process it detached into a session of its own. A missing or failing
notifier is logged, never raised: a notification must not be able to change how a run ends.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from unattended.contracts.names import (
    ENV_ITERATION,
    ENV_NOTIFY_COST,
    ENV_NOTIFY_REASON,
    ENV_NOTIFY_STATUS,
    ENV_NOTIFY_SUMMARY,
    ENV_PROJECT,
)
from unattended.platform_adapters.process import DETACHING, Handle, Outcome, clean_env

Log = Callable[[str], None]

TIMEOUT_S = 10.0
URGENT = frozenset({"blocked", "stuck", "failed"})

# Reasons already logged in this process ("says why once"); keyed by the reason text.
_said: set[str] = set()

_OSASCRIPT = (
    "on run argv",
    "display notification (item 2 of argv) with title (item 1 of argv)",
    "end run",
)


@dataclass(frozen=True)
class NotifyEvent:
    """A terminal status (done, blocked, stuck, capped, stopped, failed) or `waiting`."""

    status: str
    reason: str
    project: str
    iteration: int
    cost_usd: float
    summary: str = ""  # the morning report's few lines, for terminal statuses

    @property
    def title(self) -> str:
        return f"unattended: {self.status} ({Path(self.project).name or self.project})"

    @property
    def body(self) -> str:
        if self.summary:
            return f"{self.summary}\n(iteration {self.iteration}, ${self.cost_usd:.2f})"
        return f"{self.reason} (iteration {self.iteration}, ${self.cost_usd:.2f})"

    def env(self) -> dict[str, str]:
        """The UNATTENDED_* variables a notify command sees."""
        return {
            ENV_NOTIFY_STATUS: self.status,
            ENV_NOTIFY_REASON: self.reason,
            ENV_PROJECT: self.project,
            ENV_ITERATION: str(self.iteration),
            ENV_NOTIFY_COST: f"{self.cost_usd:.4f}",
            ENV_NOTIFY_SUMMARY: self.summary or self.reason,
        }


def _once(message: str, log: Log) -> None:
    if message not in _said:
        _said.add(message)
        log(message)


def desktop_argv(event: NotifyEvent, platform: str, path: str | None) -> list[str] | str:
    """The desktop notifier's argv for this platform, or why there is none."""
    if platform == "darwin":
        osascript = shutil.which("osascript", path=path)
        if osascript is None:
            return "osascript not found on PATH"
        script = [arg for line in _OSASCRIPT for arg in ("-e", line)]
        return [osascript, *script, event.title, event.body]
    if platform.startswith("linux") or platform.startswith("freebsd"):
        notify_send = shutil.which("notify-send", path=path)
        if notify_send is None:
            return "notify-send not found on PATH"
        urgency = "critical" if event.status in URGENT else "normal"
        return [
            notify_send,
            "--app-name=unattended",
            f"--urgency={urgency}",
            event.title,
            event.body,
        ]
    return f"no desktop notifications on platform {platform!r}"


def notify(
    event: NotifyEvent,
    notify_cmd: str | None,
    log: Log,
    *,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    timeout_s: float = TIMEOUT_S,
) -> None:
    """Send the desktop notification and run `notify_cmd`, together, within `timeout_s`.

    Blocks at most `timeout_s` (+ the time to kill and reap). Never raises.
    """
    try:
        _notify(event, notify_cmd, log, platform or sys.platform, environ, timeout_s)
    except Exception as exc:  # noqa: BLE001 - a notification must never end a run
        log(f"notification failed: {exc!r}")


def _notify(
    event: NotifyEvent,
    notify_cmd: str | None,
    log: Log,
    platform: str,
    environ: Mapping[str, str] | None,
    timeout_s: float,
) -> None:
    env = clean_env(environ)
    cwd = event.project if os.path.isdir(event.project) else None
    started: list[tuple[str, Handle]] = []
    desktop = desktop_argv(event, platform, env.get("PATH"))
    if isinstance(desktop, str):
        _once(f"no desktop notification: {desktop}", log)
    else:
        _start(started, Path(desktop[0]).name, desktop, env, cwd, False, log)
    if notify_cmd and notify_cmd.strip():
        _start(started, "notify command", notify_cmd, {**env, **event.env()}, cwd, True, log)
    deadline = time.monotonic() + timeout_s
    for label, running in started:
        _report(label, running.finish(deadline), timeout_s, log)


def _start(
    started: list[tuple[str, Handle]],
    label: str,
    argv: list[str] | str,
    env: dict[str, str],
    cwd: str | None,
    shell: bool,
    log: Log,
) -> None:
    try:
        handle = Handle(argv, env=env, cwd=cwd, shell=shell, policy=DETACHING)
        started.append((label, handle))
    except OSError as exc:
        log(f"notification: cannot run {label}: {exc}")


def _report(label: str, outcome: Outcome, timeout_s: float, log: Log) -> None:
    said = outcome.last_error_line()
    detail = f": {said}" if said else ""
    if outcome.timed_out:
        log(f"notification: {label} killed after {timeout_s:g}s{detail}")
    elif not outcome.ok:
        message = f"notification: {label} failed with exit code {outcome.returncode}{detail}"
        if label == "notify command":
            log(message)
        else:  # e.g. notify-send without a desktop session: same answer every time
            _once(message, log)
