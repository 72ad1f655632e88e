"""Every child process starts here: git, ``--done-when``, the notifier, service helpers, doctor's
probes and the worker itself.

One way to start (a session and process group of its own, so a Ctrl-C in the daemon's terminal
never reaches it; no inherited fds; our run marker and a spawn token in its environment; output
to temp files so no pipe can block either side), one way to wait (short slices, the loop's tick
in between, a deadline), and one kill policy for the whole tree (``proctree.end_tree``: a first
signal, a grace, then SIGKILL of every descendant seen, PID-reuse safe). The worker's policy is
the same with SIGINT first, the Claude CLI's clean stop.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, TypeVar

from unattended.platform_adapters import proctree
from unattended.platform_adapters.proctree import MARKER_VAR, SPAWN_VAR

if TYPE_CHECKING:
    import psutil

SERVICE_ENV_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
# Set by ``supervisor.entry`` for our own start-up, never the user's: children do not inherit it.
OWN_ENV_VARS = ("PYDANTIC_DISABLE_PLUGINS", SPAWN_VAR)
WAIT_SLICE_S = 0.1  # the longest a wait goes without looking at the tick and the abort test
SCAN_EVERY_S = 1.0  # descendants of a running child are snapshotted this often
HELPER_OUTPUT_CAP = 1 << 16

T = TypeVar("T")


def clean_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without the variables no child may inherit: the service
    manager's (systemd would take a child's messages for the daemon's) and our own."""
    env = dict(os.environ if environ is None else environ)
    for key in (*SERVICE_ENV_VARS, *OWN_ENV_VARS):
        env.pop(key, None)
    return env


@dataclass(frozen=True)
class KillPolicy:
    """How a child's tree is ended: ``first_signal``, ``grace_s``, then SIGKILL of the tree.
    ``sweep`` also looks for what the child detached (by its spawn token), for commands that
    may leave daemons behind (a notify command, ``--done-when``)."""

    first_signal: int = signal.SIGTERM
    grace_s: float = 2.0
    sweep: bool = False


HELPER = KillPolicy()
DETACHING = KillPolicy(sweep=True)


def worker_policy(grace_s: float) -> KillPolicy:
    """The worker's stop: SIGINT (the CLI prints its result and ends its tools), grace, SIGKILL
    of every descendant seen, adopted orphans included."""
    return KillPolicy(signal.SIGINT, grace_s, sweep=True)


# ----- the run marker and the loop's tick --------------------------------------------------------
_marker: str | None = None
_tick: Callable[[], object] | None = None
_tick_every_s = 1.0
_last_tick = 0.0
_in_tick = False
_live: dict[int, Handle] = {}  # started and not yet reaped: ended on the daemon's way out


def set_run_marker(run_id: str | None) -> None:
    """Every child started from now on carries ``UNATTENDED_RUN_ID=run_id``: how a later daemon
    proves a leftover process was ours (``proctree.is_ours``)."""
    global _marker
    _marker = run_id


@contextlib.contextmanager
def ticking(tick: Callable[[], object], every_s: float = 1.0) -> Iterator[None]:
    """While a caller blocks on a child (or ``call_ticking``), run ``tick`` about every
    ``every_s`` seconds from the main thread: signals, stop sentinel, watchdog, heartbeat."""
    global _tick, _tick_every_s, _last_tick
    saved = (_tick, _tick_every_s)
    _tick, _tick_every_s, _last_tick = tick, every_s, time.monotonic()
    try:
        yield
    finally:
        _tick, _tick_every_s = saved


def ticked() -> None:
    """The loop just ticked by itself: the next ``tick_if_due`` is a whole interval away."""
    global _last_tick
    _last_tick = time.monotonic()


def tick_if_due() -> None:
    global _in_tick, _last_tick
    if _tick is None or _in_tick or threading.current_thread() is not threading.main_thread():
        return
    now = time.monotonic()
    if now - _last_tick < _tick_every_s:
        return
    _last_tick, _in_tick = now, True
    try:
        _tick()
    finally:
        _in_tick = False


_live: dict[int, Handle] = {}  # started and not yet reaped: ended on the daemon's way out


def call_ticking(fn: Callable[[], T], timeout_s: float) -> T:
    """Run a blocking Python step (transcript pricing, the summary) in a thread while the tick
    goes on; TimeoutError after ``timeout_s`` (the thread is abandoned, it holds no lock)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="blocking-step", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while thread.is_alive():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"gave up after {timeout_s:g}s")
        thread.join(min(WAIT_SLICE_S, remaining))
        tick_if_due()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


# ----- one child -----------------------------------------------------------------------------
@dataclass
class Outcome:
    """How a child ended: ``returncode`` None means it was killed (deadline or abort)."""

    argv: Sequence[str] | str
    returncode: int | None
    out: bytes
    err: bytes
    aborted: bool = False  # ended because the caller's abort test said so, not the deadline

    @property
    def stdout(self) -> str:
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None and not self.aborted

    def last_error_line(self) -> str:
        """The last non-empty stderr (else stdout) line, for a one-line log message."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1][:300]
        return ""


CAPTURE = "capture"


class Handle:
    """A started child. Output ``CAPTURE`` goes to a temp file (read at ``finish``); or pass
    ``subprocess.DEVNULL``/``PIPE``/an fd. The caller polls it with ``wait`` (ticking) and
    ends it with ``finish`` or ``end``; either way it is reaped."""

    def __init__(
        self,
        argv: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        shell: bool = False,
        input: bytes | None = None,
        stdin: int | None = None,
        stdout: int | str = CAPTURE,
        stderr: int | str = CAPTURE,
        policy: KillPolicy = HELPER,
    ) -> None:
        """``input`` goes to the child through a temp file; or ``stdin``, a descriptor the
        caller owns (the worker's prompt, staged by the caller)."""
        self.argv = argv
        self.policy = policy
        self.token = uuid.uuid4().hex
        self._files: list[IO[bytes]] = []
        child_env = clean_env(env)
        child_env[SPAWN_VAR] = self.token
        if _marker is not None:
            child_env[MARKER_VAR] = _marker  # ours, even under an outer run that set its own
        try:
            if stdin is None:
                stdin = self._temp(input) if input is not None else subprocess.DEVNULL
            self._out = self._temp() if stdout == CAPTURE else None
            self._err = self._temp() if stderr == CAPTURE else None
            self.proc = subprocess.Popen(
                argv,
                shell=shell,
                stdin=stdin,
                stdout=self._out if self._out is not None else stdout,
                stderr=self._err if self._err is not None else stderr,
                env=child_env,
                cwd=cwd,
                close_fds=True,
                start_new_session=True,
            )
        except BaseException:
            self._close_files()
            raise
        proctree.protect(self.proc.pid)  # our waitpid reaps it, never the orphan reaper
        self.pid = self.proc.pid
        self.exit_fd = _exit_fd(self.pid)  # readable once it exits (Linux); None: we poll
        _live[self.pid] = self
        self._started = time.monotonic()
        self._last_scan = self._started
        self.created = 0.0
        self.seen: dict[psutil.Process, None] = {}
        if policy.sweep:  # what it detaches is told by its start time: known before it exits
            self._note_root()

    def _note_root(self) -> None:
        """Remember the child itself and its start time. Until we reap it its PID cannot name
        another process, so a helper's is read when first needed (read at once, it waited for
        the child's exec to finish: one more wake-up per git command)."""
        if self.created or self.proc.returncode is not None:
            return
        root = proctree.process(self.pid)
        if root is not None:
            self.created = root.create_time()
            self.seen[root] = None

    def _temp(self, data: bytes | None = None) -> IO[bytes]:
        handle = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _close_files()
        self._files.append(handle)
        if data:
            handle.write(data)
            handle.seek(0)
        return handle

    def _close_files(self) -> None:
        for handle in self._files:
            handle.close()
        self._files.clear()

    def exited(self) -> bool:
        """Has the child exited? It stays a zombie (not reaped), so its PID and process group
        cannot be reused while we clean up after it."""
        if self.proc.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def scan(self) -> None:
        """Remember every descendant alive now, including those in sessions of their own."""
        self._note_root()
        self._last_scan = time.monotonic()
        for child in proctree.snapshot_tree(self.pid):
            self.seen.setdefault(child, None)

    def wait_exit(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` until the child exits: woken by the exit itself where
        there is an exit fd, else by polling. Does not reap. True when it has exited."""
        if self.exit_fd is not None:
            with contextlib.suppress(InterruptedError):
                select.select([self.exit_fd], [], [], max(0.0, timeout_s))
            return self.exited()
        end = time.monotonic() + timeout_s
        pause = 0.0005
        while not self.exited():
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, WAIT_SLICE_S)
        return True

    def wait(self, deadline: float, abort: Callable[[], bool] | None = None) -> bool:
        """Wait until the child exits (True), the monotonic ``deadline`` passes or ``abort()``
        says so (False), ticking in between. Does not reap."""
        while not self.exited():
            now = time.monotonic()
            if now >= deadline or (abort is not None and abort()):
                return False
            self.wait_exit(min(WAIT_SLICE_S, deadline - now))
            tick_if_due()
            if time.monotonic() - self._last_scan >= SCAN_EVERY_S:
                self.scan()
        return True

    def end(
        self,
        known: Iterable[psutil.Process] = (),
        escalate_now: Callable[[], bool] = lambda: False,
    ) -> proctree.EndReport:
        """End the whole tree by the policy (first signal, grace, SIGKILL) and reap the child."""
        self.seen.update(dict.fromkeys(known))
        if self.proc.returncode is not None:  # reaped already: its PID may name another process
            return proctree.EndReport(root_pid=self.pid, killed=self.clean_up())
        self.scan()
        report = proctree.end_tree(
            self.pid,
            self.policy.grace_s,
            known=[*self.seen, *self.detached()],
            escalate_now=escalate_now,
            first_signal=self.policy.first_signal,
        )
        self.reap()
        return report

    def clean_up(self) -> list[int]:
        """The child exited: SIGKILL what it left behind (its group, descendants seen, what it
        detached), then reap it. Returns the PIDs killed."""
        if self.proc.returncode is None:
            proctree.kill_group(self.pid)  # the unreaped leader keeps the group id ours
        leftovers = [p for p in self.seen if p.pid != self.pid and not proctree.is_gone(p)]
        leftovers += self.detached()
        killed = proctree.freeze_and_kill(leftovers) if leftovers else []
        self.reap()
        if leftovers:
            proctree.reap_until_gone(leftovers)
        return killed

    def detached(self) -> list[psutil.Process]:
        """What the child detached from its tree (sweeping policies only): orphans adopted by
        us as a subreaper, and processes carrying its spawn token."""
        if not self.policy.sweep or not self.created:
            return []
        # Helpers started beside this one (the notify command next to notify-send) are our
        # children too, but started on purpose: orphans are the adopted ones only.
        found = proctree.adopted_since(self.created, exclude={self.pid, *proctree.protected()})
        found += proctree.marked(SPAWN_VAR, self.token, self.created)
        return [p for p in found if p.pid != self.pid]

    def reap(self, timeout_s: float | None = None) -> None:
        """Collect the child's exit status (waiting up to ``timeout_s``; None: for as long as
        it takes, which after SIGKILL is a moment) and forget it."""
        with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout_s)
        if self.proc.returncode is None:
            return  # still running: stays listed, so the daemon's last act ends it
        if self.exit_fd is not None:
            os.close(self.exit_fd)
            self.exit_fd = None
        proctree.unprotect(self.pid)
        _live.pop(self.pid, None)

    def identities(self) -> list[tuple[int, float]]:
        """(pid, create time) of this child and every descendant seen, those alive."""
        self._note_root()
        found = (proctree.identity(p) for p in self.seen if not proctree.is_gone(p))
        return [ident for ident in found if ident is not None]

    def finish(
        self,
        deadline: float,
        abort: Callable[[], bool] | None = None,
        max_output: int | None = HELPER_OUTPUT_CAP,
    ) -> Outcome:
        """Wait (ticking) until the deadline; past it, or on abort, end the tree by the policy;
        otherwise end what the child left behind. Always reaps; returns what it printed."""
        try:
            exited = self.wait(deadline, abort)
            tick_if_due()  # a run of quick children (git) must not starve the tick either
            aborted = not exited and time.monotonic() < deadline
            if exited:
                self.clean_up()
                returncode: int | None = self.proc.returncode
            else:
                self.end()
                returncode = None
            return Outcome(
                self.argv,
                returncode,
                _read(self._out, max_output),
                _read(self._err, max_output),
                aborted=aborted,
            )
        finally:
            if self.proc.returncode is None:  # an exception mid-way: never leave it running
                self.end()
            self._close_files()


def _exit_fd(pid: int) -> int | None:
    """A pidfd of our (unreaped, so not reusable) child: readable from the instant it exits,
    so a wait wakes then, not at its next poll. Close-on-exec. None without pidfd_open (not
    Linux, a kernel before 5.3, a seccomp filter)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return opener(pid)
    except OSError:
        return None


def live_identities() -> list[tuple[int, float]]:
    """Every child started here and not yet reaped, with the descendants seen: for state.json."""
    return [ident for handle in list(_live.values()) for ident in handle.identities()]


def end_all() -> list[int]:
    """End every child still running (the daemon's last act); returns the PIDs killed."""
    killed: list[int] = []
    for handle in list(_live.values()):
        killed += handle.end().killed
    return killed


def _read(handle: IO[bytes] | None, limit: int | None) -> bytes:
    if handle is None:
        return b""
    handle.seek(0)
    return handle.read(-1 if limit is None else limit)


def run(
    argv: Sequence[str] | str,
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    shell: bool = False,
    input: bytes | None = None,
    policy: KillPolicy = HELPER,
    abort: Callable[[], bool] | None = None,
    max_output: int | None = HELPER_OUTPUT_CAP,
    stdout: int | str = CAPTURE,
    stderr: int | str = CAPTURE,
) -> Outcome:
    """Run a child to completion, ticking while it runs; past ``timeout_s`` (or when ``abort()``
    is true) its whole tree is ended by ``policy``. OSError when it cannot start."""
    handle = Handle(
        argv, env=env, cwd=cwd, shell=shell, input=input, stdout=stdout, stderr=stderr,
        policy=policy,
    )  # fmt: skip
    return handle.finish(time.monotonic() + timeout_s, abort, max_output)
