"""The sd_notify protocol, stdlib only: datagrams to `$NOTIFY_SOCKET` for a `Type=notify` unit.

systemd learns from these that the daemon is ready (after it took the lock), that its main loop
is alive (WATCHDOG=1 at half of `WatchdogSec=`), what it is doing (STATUS=) and that it is
stopping. Outside systemd every call is a cheap no-op. Workers must never inherit the variables
(`strip_notify_env`): with `NotifyAccess=main` their messages would be dropped with a warning
and, worse, a worker could claim readiness or feed the watchdog for us.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping

from unattended.platform_adapters.process import clean_env

Log = Callable[[str], None]


def strip_notify_env(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` without NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (for workers)."""
    return clean_env(environ)


def _socket_address(raw: str | None) -> str | None:
    """`/path` stays as is; `@name` is an abstract socket (leading NUL); anything else: None."""
    if not raw:
        return None
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None


def _watchdog_usec(environ: Mapping[str, str], pid: int) -> int | None:
    """WATCHDOG_USEC when it is meant for us: a positive integer and WATCHDOG_PID unset or ours."""
    raw_pid = environ.get("WATCHDOG_PID")
    if raw_pid:
        try:
            if int(raw_pid) != pid:
                return None
        except ValueError:
            return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None


def _one_line(text: str) -> str:
    """A STATUS= value must not contain newlines (each line would be a new assignment)."""
    return " ".join(text.split())


class SdNotifier:
    """Sends sd_notify messages; `enabled` is False (and every call a no-op) outside systemd."""

    def __init__(
        self,
        address: str | None,
        watchdog_usec: int | None = None,
        log: Log | None = None,
    ) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._log = log
        self._warned = False
        self._sock: socket.socket | None = None
        self._last_watchdog: float | None = None

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        pid: int | None = None,
        log: Log | None = None,
    ) -> SdNotifier:
        """Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (the watchdog only if it is ours)."""
        env = os.environ if environ is None else environ
        me = os.getpid() if pid is None else pid
        address = _socket_address(env.get("NOTIFY_SOCKET"))
        if env.get("NOTIFY_SOCKET") and address is None and log is not None:
            log(f"sd_notify: unsupported NOTIFY_SOCKET {env['NOTIFY_SOCKET']!r}; not notifying")
        return cls(address, _watchdog_usec(env, me) if address else None, log)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1: half of WatchdogSec=, or None when there is no watchdog."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def send(self, *assignments: str) -> bool:
        """Send `KEY=value` lines as one datagram; True when it was delivered. Never raises."""
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.settimeout(1.0)  # a full manager queue must not hang the main loop
                self._sock = sock
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            if not self._warned and self._log is not None:
                self._log(f"sd_notify: cannot send to NOTIFY_SOCKET ({exc}); continuing without")
            self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """READY=1 (with an optional STATUS=): the daemon holds the lock and runs its loop."""
        extra = (f"STATUS={_one_line(status)}",) if status else ()
        return self.send("READY=1", *extra)

    def status(self, text: str) -> bool:
        """STATUS=<one line>, shown by `systemctl --user status`."""
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """WATCHDOG=1, to be sent from the main loop itself, never from a helper thread."""
        return self.send("WATCHDOG=1")

    def watchdog_if_due(self, now: float) -> bool:
        """Send WATCHDOG=1 when at least `watchdog_interval_s` passed since the last one.

        `now` is the loop's `time.monotonic()` reading, so the loop can call this every tick.
        """
        interval = self.watchdog_interval_s
        if interval is None:
            return False
        if self._last_watchdog is not None and now - self._last_watchdog < interval:
            return False
        self._last_watchdog = now
        return self.watchdog()

    def stopping(self, status: str | None = None) -> bool:
        """STOPPING=1: the daemon is ending its workers and will exit."""
        extra = (f"STATUS={_one_line(status)}",) if status else ()
        return self.send("STOPPING=1", *extra)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
