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
import os
import select
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from unattended.platform_adapters import proctree
from unattended.supervisor.worker.rawlog import CappedLog
from unattended.supervisor.worker.stream import StreamFacts, StreamReader

if TYPE_CHECKING:
    import psutil

READ_CHUNK = 1 << 20
MAX_CHUNKS_PER_PUMP = 64  # bounded work per pump so the loop's ticks keep their pace
TREE_SCAN_S = 5.0  # descendants snapshot period (orphans are also caught as a subreaper)
CPU_SAMPLE_S = 5.0  # how often the tree's CPU time is sampled for the stall watchdog
STDERR_TAIL_BYTES = 8192


class SpawnError(Exception):
    """The worker could not be started (missing or non-executable binary, bad cwd...)."""


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
        proc: subprocess.Popen[bytes],
        log: CappedLog,
        should_escalate: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self.spec = spec
        self._proc = proc
        self._log = log
        self._should_escalate = should_escalate
        self._clock = clock
        self._reader = StreamReader(clock)
        self._fd = proc.stdout.fileno() if proc.stdout else -1
        self._eof = False
        self.pid = proc.pid
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
        """Start the worker: own session, stdin closed, stdout a pipe we drain, stderr a file."""
        log = CappedLog(spec.stdout_path, spec.max_log_bytes)
        try:
            stderr = os.open(spec.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            log.close()
            raise SpawnError(f"cannot create {spec.stderr_path}: {exc.strerror}") from None
        try:
            proc = subprocess.Popen(
                spec.argv,
                cwd=spec.cwd,
                env=spec.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
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
        proctree.protect(proc.pid)
        if proc.stdout is not None:
            os.set_blocking(proc.stdout.fileno(), False)
        return cls(spec, proc, log, should_escalate, clock)

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
        if not self._eof:
            try:
                ready, _, _ = select.select([self._fd], [], [], timeout)
            except InterruptedError:
                ready = []
            if ready:
                self._drain()
        else:
            time.sleep(timeout)
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
            return self._should_escalate()

        self._scan_tree(self._clock())
        report = proctree.end_tree(
            self.pid, self.spec.grace_s, known=list(self._known), escalate_now=during_grace
        )
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
            reap_until_gone(leftovers, self._clock)
            self._end_report = proctree.EndReport(root_pid=self.pid, killed=killed)
            if not self._eof:
                self._drain()
        self._finish()

    def _leftovers(self) -> list[psutil.Process]:
        procs = [p for p in self._known if p.pid != self.pid and not proctree.is_gone(p)]
        if self._root_create_time:
            seen = {p.pid for p in procs}
            procs += [
                p
                for p in proctree.adopted_since(self._root_create_time, exclude={self.pid})
                if p.pid not in seen
            ]
        return procs

    def _finish(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
        if self._exit_code is None:
            self._exit_code = self._proc.returncode
        proctree.unprotect(self.pid)
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


def reap_until_gone(procs: list[psutil.Process], clock: Callable[[], float]) -> None:
    """SIGKILL takes a moment: reap our children among ``procs`` until none is left (≤ 2 s)."""
    deadline = clock() + 2.0
    while True:
        proctree.reap_ours(procs)
        if all(proctree.is_gone(p) for p in procs) or clock() >= deadline:
            return
        time.sleep(0.01)


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
