"""Keep the machine awake for exactly the daemon's life, and never leak the inhibitor.

Linux: `systemd-inhibit ... tail --pid=<daemon> -f /dev/null`; macOS: `caffeinate -i -w <daemon>`.
Both children end by themselves when the daemon dies, even by `kill -9`, because the watched
pid disappears. Windows: `SetThreadExecutionState` in the daemon's own thread, which Windows
drops when the process exits. Anywhere the facility is missing or refuses (no logind in a
container, a polkit refusal), the inhibitor says why once through `log` and does nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypedDict

from unattended.platform_adapters.process import Handle, KillPolicy, clean_env

Log = Callable[[str], None]

# How long start_inhibitor waits to catch an inhibitor that fails at once (no logind: ~10 ms).
SETTLE_S = 0.15
# How long release() gives the child to go after SIGTERM before SIGKILL.
RELEASE_GRACE_S = 2.0
# Names that identify an inhibitor process in `inhibitor_alive` (guards against pid reuse).
INHIBITOR_NAMES = ("systemd-inhibit", "caffeinate")

ES_CONTINUOUS = 0x80000000
ES_SYSTEM_REQUIRED = 0x00000001


class InhibitorRecord(TypedDict):
    """What the daemon stores (e.g. in state.json) so `status` can tell whether one is held."""

    kind: str
    pid: int | None
    held: bool
    detail: str


class Inhibitor(Protocol):
    """One small interface for every platform."""

    @property
    def held(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    def describe(self) -> str: ...

    def record(self) -> InhibitorRecord: ...

    def release(self) -> None: ...


class NullInhibitor:
    """No inhibition possible here; `describe()` says why."""

    def __init__(self, why: str) -> None:
        self.why = why

    @property
    def held(self) -> bool:
        return False

    @property
    def pid(self) -> int | None:
        return None

    def describe(self) -> str:
        return f"none: {self.why}"

    def record(self) -> InhibitorRecord:
        return {"kind": "none", "pid": None, "held": False, "detail": self.why}

    def release(self) -> None:
        return None


class ChildInhibitor:
    """An inhibitor held by a child process whose life is tied to the daemon's pid."""

    def __init__(self, kind: str, argv: list[str], log: Log, env: Mapping[str, str]) -> None:
        self.kind = kind
        self._log = log
        self._warned = False
        self._released = False
        self._stderr = b""
        # Through the process module: no inherited fds (the daemon's lock and log stay with
        # the daemon), a session of its own (a Ctrl-C in the daemon's terminal does not reach it).
        self._handle = Handle(
            argv,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            policy=KillPolicy(signal.SIGTERM, RELEASE_GRACE_S),
        )
        self.proc = self._handle.proc
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)

    @property
    def pid(self) -> int | None:
        return None if self._released else self.proc.pid

    @property
    def held(self) -> bool:
        """True while the child runs. Polling it logs once if the inhibitor ended on its own."""
        if self._released:
            return False
        if self.proc.poll() is None:
            return True
        self._warn_exited()
        return False

    def describe(self) -> str:
        if self.held:
            return f"{self.kind} (pid {self.proc.pid})"
        if self._released:
            return f"none: {self.kind} released"
        return f"none: {self._exit_reason()}"

    def record(self) -> InhibitorRecord:
        held = self.held
        return {
            "kind": self.kind,
            "pid": self.proc.pid if held else None,
            "held": held,
            "detail": self.describe(),
        }

    def release(self) -> None:
        """End the child (and anything in its process group) and reap it; safe to call twice."""
        if self._released:
            return
        self._released = True
        self._handle.end()  # SIGTERM, grace, SIGKILL of its tree (e.g. the `tail` it started)
        self._read_stderr()
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def _read_stderr(self) -> None:
        """Collect what the child said, without blocking on a grandchild that holds the pipe."""
        if self.proc.stderr is None or self.proc.stderr.closed:
            return
        try:
            chunk = self.proc.stderr.read(4096)
        except OSError:
            return
        if chunk:
            self._stderr = (self._stderr + chunk)[-4096:]

    def _exit_reason(self) -> str:
        self._read_stderr()
        lines = self._stderr.decode("utf-8", "replace").strip().splitlines()
        said = f": {lines[-1].strip()}" if lines else ""
        return f"{self.kind} exited with code {self.proc.returncode}{said}"

    def _warn_exited(self) -> None:
        if not self._warned:
            self._warned = True
            self._log(
                f"sleep inhibitor not held ({self._exit_reason()}); "
                "the machine may sleep during the run"
            )


class WindowsInhibitor:
    """SetThreadExecutionState in the calling thread: call start and release from the main loop.

    Windows ties the request to the thread and drops it when the process exits, so nothing can
    leak. `kernel32` is injectable so the call sequence is testable off Windows.
    """

    kind = "SetThreadExecutionState"

    def __init__(self, kernel32: Any = None) -> None:
        if kernel32 is None:
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            kernel32.SetThreadExecutionState.argtypes = [ctypes.c_uint32]
            kernel32.SetThreadExecutionState.restype = ctypes.c_uint32
        self._kernel32 = kernel32
        previous = self._kernel32.SetThreadExecutionState(ES_CONTINUOUS | ES_SYSTEM_REQUIRED)
        if previous == 0:
            raise OSError("SetThreadExecutionState failed")
        self._held = True

    @property
    def held(self) -> bool:
        return self._held

    @property
    def pid(self) -> int | None:
        return None

    def describe(self) -> str:
        return self.kind if self._held else f"none: {self.kind} released"

    def record(self) -> InhibitorRecord:
        return {"kind": self.kind, "pid": None, "held": self._held, "detail": self.describe()}

    def release(self) -> None:
        if self._held:
            self._held = False
            self._kernel32.SetThreadExecutionState(ES_CONTINUOUS)


def inhibitor_argv(
    platform: str, daemon_pid: int, why: str, path: str | None
) -> tuple[str, list[str]] | str:
    """(kind, argv) for the child inhibitor on this platform, or the reason there is none.

    Pure apart from looking the tools up on `path`, so the macOS argv is testable on Linux.
    """
    if platform == "darwin":
        caffeinate = shutil.which("caffeinate", path=path)
        if caffeinate is None:
            return "caffeinate not found on PATH"
        return "caffeinate", [caffeinate, "-i", "-w", str(daemon_pid)]
    if platform.startswith("linux"):
        inhibit = shutil.which("systemd-inhibit", path=path)
        if inhibit is None:
            return "systemd-inhibit not found on PATH"
        tail = shutil.which("tail", path=path)
        if tail is None:
            return "tail not found on PATH (needed to tie the inhibitor to the daemon's life)"
        argv = [
            inhibit,
            "--what=idle:sleep",
            "--who=unattended",
            f"--why={why}",
            "--mode=block",
            tail,
            f"--pid={daemon_pid}",
            "-f",
            "/dev/null",
        ]
        return "systemd-inhibit", argv
    return f"no sleep inhibitor for platform {platform!r}"


def start_inhibitor(
    daemon_pid: int,
    why: str,
    log: Log,
    *,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    settle_s: float = SETTLE_S,
) -> Inhibitor:
    """Hold a sleep inhibitor until `release()` or the death of `daemon_pid`; never raises.

    `why` is shown by `systemd-inhibit --list` (use the project path). Waits at most `settle_s`
    to catch an inhibitor that fails at once; a later failure is logged when `held` is next read
    (read it once per iteration). On failure the result is a no-op that has logged why once.
    """
    plat = sys.platform if platform is None else platform
    env = clean_env(environ)
    if plat == "win32":
        try:
            return WindowsInhibitor()
        except (OSError, AttributeError) as exc:
            return _none(f"SetThreadExecutionState unavailable ({exc})", log)
    found = inhibitor_argv(plat, daemon_pid, " ".join(why.split()) or "unattended", env.get("PATH"))
    if isinstance(found, str):
        return _none(found, log)
    kind, argv = found
    try:
        inhibitor = ChildInhibitor(kind, argv, log, env)
    except OSError as exc:
        return _none(f"cannot run {kind}: {exc}", log)
    deadline = time.monotonic() + settle_s
    while inhibitor.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if not inhibitor.held:  # logs the reason once
        why = inhibitor.describe().removeprefix("none: ")
        inhibitor.release()  # reaps it (and anything it left in its group)
        return NullInhibitor(why)
    return inhibitor


def _none(why: str, log: Log) -> NullInhibitor:
    log(f"no sleep inhibitor ({why}); the machine may sleep during the run")
    return NullInhibitor(why)


def inhibitor_alive(pid: int | None) -> bool:
    """Whether `pid` is a live (non-zombie) inhibitor process, for `status` from another process."""
    if pid is None or pid <= 0:
        return False
    proc = Path("/proc") / str(pid)
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (
                (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            )
        except OSError:
            return False
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        return state not in ("Z", "X") and any(name in cmdline for name in INHIBITOR_NAMES)
    if sys.platform.startswith("linux"):
        return False
    return _alive_psutil(pid)


def _alive_psutil(pid: int) -> bool:
    """Other platforms: ask psutil (imported only here, off the daemon's start-up path)."""
    try:
        import psutil

        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        text = " ".join([p.name(), *p.cmdline()])
    except Exception:  # noqa: BLE001 - gone, denied or psutil missing: not provably alive
        return False
    return any(name in text for name in INHIBITOR_NAMES)
