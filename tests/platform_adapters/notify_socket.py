"""A real sd_notify receiver for tests: a Unix datagram socket bound in a temp dir (or abstract).

Reusable by the daemon-level test:

    with NotifySocket(tmp_path) as sock:
        env = {**env, **sock.env(watchdog_usec=400_000)}
        ... start `start --foreground` with env ...
        sock.wait_for("READY=1", timeout=20)
        sock.wait_for("WATCHDOG=1", count=2, timeout=20)
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from types import TracebackType


class NotifySocket:
    """Binds `tmp_dir/notify.sock` (or an abstract name) and collects every datagram."""

    def __init__(self, tmp_dir: Path | None = None, *, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"unattended-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            if tmp_dir is None:
                raise ValueError("a path socket needs tmp_dir")
            path = Path(tmp_dir) / "notify.sock"
            if len(os.fsencode(path)) > 100:  # sun_path is 108 bytes
                raise ValueError(f"socket path too long: {path}")
            self.sock.bind(str(path))
            self.address = str(path)
        self.messages: list[dict[str, str]] = []
        self.raw: list[bytes] = []

    def env(
        self, watchdog_usec: int | None = None, watchdog_pid: int | None = None
    ) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": self.address}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        if watchdog_pid is not None:
            env["WATCHDOG_PID"] = str(watchdog_pid)
        return env

    def drain(self, timeout: float = 0.0) -> list[dict[str, str]]:
        """Receive what has arrived, waiting up to `timeout` for the first datagram."""
        got: list[dict[str, str]] = []
        wait = timeout
        while True:
            if wait > 0:
                self.sock.settimeout(wait)
            else:
                self.sock.setblocking(False)
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, TimeoutError):
                break
            self.raw.append(data)
            lines = data.decode("utf-8", "replace").splitlines()
            got.append(dict(line.split("=", 1) for line in lines if "=" in line))
            wait = 0
        self.messages.extend(got)
        return got

    def wait_for(
        self, assignment: str, *, count: int = 1, timeout: float = 20.0
    ) -> list[dict[str, str]]:
        """Wait until `count` messages contain `KEY=value` (or just `KEY`); return them all."""
        key, _, value = assignment.partition("=")
        deadline = time.monotonic() + timeout

        def matching() -> list[dict[str, str]]:
            return [m for m in self.messages if key in m and (not value or m[key] == value)]

        while len(matching()) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{assignment} x{count} not received; got {self.messages}")
            self.drain(timeout=min(left, 0.5))
        return matching()

    def close(self) -> None:
        self.sock.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)

    def __enter__(self) -> NotifySocket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
