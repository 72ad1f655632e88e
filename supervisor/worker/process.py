"""One worker process: spawned in its own session, its stdout streamed to disk while parsed,
watched for timeout and stall, and ended as a whole tree.

The loop owns the pace: it calls ``pump()`` with a short timeout and does its own ticks in
between, so a stop request or a deleted ``.unattended/`` is noticed while a worker runs. The
worker never holds more than one stream line in memory, whatever it prints.

States: ``running`` → (``stopping``) → ``finished``; ``stop()`` is the one way to end a live
worker early, and it blocks for at most the grace period (a second signal escalates it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from unattended.platform_adapters import proctree
from unattended.platform_adapters.process import Handle, tick_if_due, worker_policy
from unattended.supervisor.records.fsio import open_private_file
from unattended.supervisor.worker.rawlog import CappedLog
from unattended.supervisor.worker.stream import StreamFacts, StreamReader

if TYPE_CHECKING:
    import psutil

READ_CHUNK = 1 << 20
MAX_CHUNKS_PER_PUMP = 64  # bounded work per pump so the loop's ticks keep their pace
TREE_SCAN_S = 1.0  # descendants snapshot period: state.json lists them (a kill -9 leaves it)
CPU_SAMPLE_S = 5.0  # how often the tree's CPU time is sampled for the stall watchdog
STDERR_TAIL_BYTES = 8192


class SpawnError(Exception):
    """The worker could not be started (missing or non-executable binary, bad cwd...)."""

    def __init__(self, message: str, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full


@dataclass(frozen=True)
class WorkerSpec:
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    stdout_path: Path
    stderr_path: Path
    timeout_s: float
    stall_s: float
    grace_s: float
    max_log_bytes: int
    # The prompt goes to the worker's stdin, never its argv: /proc/<pid>/cmdline is readable by
    # every local user, and argv is capped at 128 KiB a string. None: stdin is /dev/null.
    prompt: str | None = None
    prompt_path: Path | None = None  # where the prompt is staged (removed once the worker has it)


@dataclass
class WorkerOutcome:
    """How the worker ended and what its stream said."""

    exit_code: int | None
    ended_by: str | None  # None (exited by itself), "timeout", "stall", "stop", "api_error"
    last_stderr_line: str | None
    stream: StreamFacts
    killed: list[int] = field(default_factory=list)  # descendants (or root) that got SIGKILL
    survivors: list[int] = field(default_factory=list)
    log_bytes_dropped: int = 0
    disk_full: bool = False  # the raw output could not be written (ENOSPC)


class Worker:
    def __init__(
        self,
        spec: WorkerSpec,
        handle: Handle,
        log: CappedLog,
        should_escalate: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self.spec = spec
        self._handle = handle
        self._proc = handle.proc
        self._log = log
        self._should_escalate = should_escalate
        self._clock = clock
        self._reader = StreamReader(clock)
        self._fd = handle.proc.stdout.fileno() if handle.proc.stdout else -1
        self._eof = False
        self.pid = handle.pid
        self.started = clock()
        self.state = "running"
        self.ended_by: str | None = None
        self._exit_code: int | None = None
        self._known: dict[psutil.Process, None] = {}
        self._root_create_time = 0.0
        self._last_scan = 0.0
        self._cpu_total = -1.0
        self._last_activity = self.started  # output or CPU use, for the stall watchdog
        self._last_cpu_sample = self.started
        self._end_report: proctree.EndReport | None = None
        root = proctree.process(self.pid)
        if root is not None:
            self._root_create_time = root.create_time()
            self._known[root] = None

    # ----- lifecycle ------------------------------------------------------------------
    @classmethod
    def spawn(
        cls,
        spec: WorkerSpec,
        should_escalate: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> Worker:
        """Start the worker: own session, the prompt (or nothing) on stdin, stdout a pipe we
        drain, stderr a file."""
        stdin = _prompt_stdin(spec)
        try:
            log = CappedLog(spec.stdout_path, spec.max_log_bytes)
        except BaseException:
            os.close(stdin)
            raise
        try:
            stderr = open_private_file(spec.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        except OSError as exc:
            log.close()
            os.close(stdin)
            raise SpawnError(f"cannot create {spec.stderr_path}: {exc.strerror}") from None
        try:
            handle = Handle(
                spec.argv,
                cwd=spec.cwd,
                env=spec.env,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=stderr,
                policy=worker_policy(spec.grace_s),
            )
        except FileNotFoundError:
            log.close()
            raise SpawnError(
                f"{spec.argv[0]}: no such file (is the claude binary installed?)"
            ) from None
        except PermissionError:
            log.close()
            raise SpawnError(f"{spec.argv[0]}: not executable") from None
        except OSError as exc:
            log.close()
            raise SpawnError(f"{spec.argv[0]}: {exc.strerror}") from None
        finally:
            os.close(stderr)
            os.close(stdin)  # the worker holds its own copy
        if handle.proc.stdout is not None:
            os.set_blocking(handle.proc.stdout.fileno(), False)
        return cls(spec, handle, log, should_escalate, clock)

    @property
    def finished(self) -> bool:
        return self.state == "finished"

    @property
    def stopping(self) -> bool:
        return self.state == "stopping"

    def _change_state(self, new: str) -> None:
        allowed = {"running": {"stopping", "finished"}, "stopping": {"finished"}}
        if new not in allowed.get(self.state, set()):
            raise RuntimeError(f"worker {self.pid}: bad transition {self.state} → {new}")
        self.state = new

    # ----- the pump -------------------------------------------------------------------
    def pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for output, stream it, and enforce timeout and stall."""
        if self.finished:
            return
        until = time.monotonic() + timeout
        if not self._eof:
            # The root's exit wakes us too: a tool child may hold stdout open after it.
            exit_fd = self._handle.exit_fd
            watched = [self._fd] if exit_fd is None else [self._fd, exit_fd]
            try:
                ready, _, _ = select.select(watched, [], [], timeout)
            except InterruptedError:
                ready = []
            if self._fd in ready:
                self._drain()
        if self._eof:
            # EOF comes a moment before the exit (fds close first): wait for the exit itself,
            # in this pump (not a tick later, nor at the end of the timeout).
            self._handle.wait_exit(max(0.0, until - time.monotonic()))
        now = self._clock()
        if now - self._last_scan >= TREE_SCAN_S:
            self._scan_tree(now)
        if self._proc.poll() is not None:
            self._on_root_exit()
            return
        if self._log.full:
            self.stop("stop")  # its output cannot be kept: the loop ends the run as failed
        elif now - self.started >= self.spec.timeout_s:
            self.stop("timeout")
        elif self._stalled(now):
            self.stop("stall")
        elif self._reader.facts.fatal_api_retry:
            # The CLI retries a bad key for minutes, and its retry events keep the stall
            # watchdog quiet: an error that waiting cannot heal ends the worker at once.
            self.stop("api_error")

    def _drain(self) -> None:
        for _ in range(MAX_CHUNKS_PER_PUMP):
            try:
                chunk = os.read(self._fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
                return
            self._log.write(chunk)
            self._reader.feed(chunk)
            self._last_activity = self._clock()

    def _scan_tree(self, now: float) -> None:
        self._last_scan = now
        for child in proctree.snapshot_tree(self.pid):
            self._known.setdefault(child, None)

    def _stalled(self, now: float) -> bool:
        """Silent for stall_s and the tree used no CPU in that time (a quiet build is busy)."""
        if now - self._last_cpu_sample >= CPU_SAMPLE_S:
            self._last_cpu_sample = now
            self._scan_tree(now)  # a tool child started since the last scan counts too
            total = self._tree_cpu()
            if total != self._cpu_total:
                self._cpu_total = total
                self._last_activity = now
        return now - self._last_activity >= self.spec.stall_s

    def _tree_cpu(self) -> float:
        import psutil

        total = 0.0
        for proc in list(self._known):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return round(total, 2)

    # ----- ending ---------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """End the whole tree: SIGINT (the CLI's clean stop), grace, then SIGKILL. Blocking."""
        if self.state != "running":
            return
        self.ended_by = reason
        self._change_state("stopping")

        def during_grace() -> bool:
            if not self._eof:
                self._drain()  # a full pipe must not keep the CLI from exiting
            tick_if_due()  # the grace may be long: signals, watchdog and heartbeat go on
            return self._should_escalate()

        self._scan_tree(self._clock())
        report = self._handle.end(known=list(self._known), escalate_now=during_grace)
        self._end_report = report
        self._exit_code = report.root_exit_code
        self._drain_rest()
        self._finish()

    def _drain_rest(self, limit_s: float = 1.0) -> None:
        """After the tree is gone the pipe reaches EOF at once: keep what it still holds (the
        CLI prints its result line on SIGINT)."""
        deadline = self._clock() + limit_s
        while not self._eof and self._clock() < deadline:
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if ready:
                self._drain()

    def seen_identities(self) -> list[tuple[int, float]]:
        """(pid, create time) of the worker and each descendant seen that is still alive."""
        found = (proctree.identity(p) for p in self._known if not proctree.is_gone(p))
        return [ident for ident in found if ident is not None]

    def kill_now(self) -> None:
        """The daemon is going down (an internal error): SIGKILL the whole tree at once, no
        grace, and reap. Safe whatever state the worker is in."""
        if self.finished:
            return
        self._scan_tree(self._clock())
        leftovers = [*self._known, *self._handle.detached()]
        self._end_report = proctree.EndReport(
            root_pid=self.pid, killed=proctree.freeze_and_kill(leftovers)
        )
        proctree.reap_until_gone([p for p in leftovers if p.pid != self.pid])
        if self.ended_by is None:
            self.ended_by = "stop"
        if self.state == "running":
            self._change_state("stopping")
        self._finish()

    def escalate(self) -> None:
        """A second signal: nothing to do when stop() already ran (its callback saw it)."""
        if self.state == "running":
            self.stop("stop")

    def _on_root_exit(self) -> None:
        """The root exited: read what is left, then kill any descendant that outlived it."""
        self._exit_code = self._proc.returncode
        deadline = self._clock() + 2.0
        while not self._eof and self._clock() < deadline:
            ready, _, _ = select.select([self._fd], [], [], 0.05)
            if ready:
                self._drain()
            elif self._leftovers():
                break  # a descendant holds our stdout: it is about to be killed
        leftovers = self._leftovers()
        if leftovers:
            killed = proctree.freeze_and_kill(leftovers, None)
            proctree.reap_until_gone(leftovers)
            self._end_report = proctree.EndReport(root_pid=self.pid, killed=killed)
            if not self._eof:
                self._drain()
        self._finish()

    def _leftovers(self) -> list[psutil.Process]:
        procs = [p for p in self._known if p.pid != self.pid and not proctree.is_gone(p)]
        if self._root_create_time:
            seen = {p.pid for p in procs}
            procs += [p for p in self._handle.detached() if p.pid not in seen]
        return procs

    def _finish(self) -> None:
        self._handle.reap(timeout_s=5)
        if self._exit_code is None:
            self._exit_code = self._proc.returncode
        self._reader.finish()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._log.close()
        self._change_state("finished")

    def record(self) -> WorkerOutcome:
        if not self.finished:
            raise RuntimeError("record() before the worker finished")
        report = self._end_report
        return WorkerOutcome(
            exit_code=self._exit_code,
            ended_by=self.ended_by,
            last_stderr_line=last_line(self.spec.stderr_path),
            stream=self._reader.facts,
            killed=report.killed if report else [],
            survivors=report.survivors if report else [],
            log_bytes_dropped=self._log.dropped,
            disk_full=self._log.full,
        )


def _prompt_stdin(spec: WorkerSpec) -> int:
    """A descriptor for the worker's stdin: the prompt in a private file, else /dev/null.

    A file rather than a pipe: the worker reads it at its own pace, so a large prompt can never
    block the loop's tick on a full pipe, and no writer thread outlives a crash. The file is
    created afresh (0600, O_EXCL, never through a symlink) and unlinked at once: the open
    descriptor is all the worker needs, and nothing is left behind on disk.
    """
    if spec.prompt is None or spec.prompt_path is None:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    path = spec.prompt_path
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a leftover of a killed daemon (unlink never follows a symlink)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise SpawnError(
            f"cannot stage the prompt in {path}: {exc.strerror}", exc.errno == errno.ENOSPC
        ) from None
    try:
        view = memoryview(spec.prompt.encode())
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError as exc:
        os.close(fd)
        raise SpawnError(
            f"cannot stage the prompt in {path}: {exc.strerror}", exc.errno == errno.ENOSPC
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return fd


def last_line(path: Path) -> str | None:
    """The last non-empty line of a file, reading only its tail."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - STDERR_TAIL_BYTES))
            tail = fh.read()
    except OSError:
        return None
    for line in reversed(tail.decode("utf-8", "replace").splitlines()):
        if line.strip():
            return line.strip()[:500]
    return None
