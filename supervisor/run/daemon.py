"""Daemon lifecycle: detach, readiness handshake, lock, pid file, and the run's bookends.

``start`` takes the lock *before* forking, so two concurrent starts can never both win: the
daemon inherits the locked file description and the parent's copy is closed. The daemon is
forked after the CLI's imports (no second interpreter start-up) and reports back through a
pipe once it has written ``status: starting``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unattended.contracts.exit_codes import ExitCode
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.contracts.state import RunState, StateFileError
from unattended.supervisor.records.fsio import ensure_private_dir, on_refusal, open_private_file
from unattended.supervisor.records.runlog import RunLog
from unattended.supervisor.run.lock import RunLock
from unattended.supervisor.run.prompt import PromptSource

READY_TIMEOUT_S = 15.0


class DaemonStartError(Exception):
    """The daemon could not start; the message is one line for the user, ``code`` the exit
    code `start` ends with (7 for a full disk, 2 when nothing could be started, 1 for a bug)."""

    def __init__(self, message: str, code: int = ExitCode.INTERNAL_ERROR) -> None:
        super().__init__(message)
        self.code = code


def start_failure(exc: OSError, place: Path | None = None) -> tuple[int, str]:
    """(exit code, one line) for a file-system error before the run began: a full disk is a
    failure (7), anything else (read-only, permissions) means nothing could be started (2)."""
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    name = exc.filename or place
    if exc.filename and place is not None and not os.path.isabs(exc.filename):
        name = Path(place) / exc.filename  # opened relative to a checked directory of ours
    where = f" ({name})" if name else ""
    what = "no space left on device" if full else (exc.strerror or str(exc))
    return (ExitCode.FAILED if full else ExitCode.USAGE), f"cannot start: {what}{where}"


@dataclass
class LaunchRequest:
    project: Path
    git_dir: Path
    settings: Settings
    sources: dict[str, str]
    prompt_source: PromptSource
    resume: bool = False
    run_id: str | None = None  # a new run's id chosen by the caller, else its start time
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    echo: bool = False  # foreground: also print run.log lines on stdout

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.project)


def _report(fd: int | None, message: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (message.replace("\n", " ") + "\n").encode())
        os.close(fd)
    except OSError:
        pass


def run_daemon(req: LaunchRequest, lock: RunLock, ready_fd: int | None = None) -> int:
    """The daemon's whole life. Returns its exit code (see contracts.exit_codes)."""
    from unattended.supervisor.records.liveness import process_create_time
    from unattended.supervisor.records.pidfile import write_pid_file
    from unattended.supervisor.records.state import write_state
    from unattended.supervisor.run.begin import begin_run
    from unattended.supervisor.run.signals import SignalFlags

    paths = req.paths
    flags = SignalFlags()
    flags.install()
    log = RunLog(paths.run_log, paths.events, view=paths.run_log_view)
    if req.echo:
        log.echo = _terminal_echo(log, flags, paths)
    on_refusal(log.refused)  # a write through a planted symlink: refused, and said so
    try:
        start = begin_run(paths, req.settings, req.sources, req.resume, req.run_id)
    except StateFileError as exc:
        return _not_started(log, ready_fd, ExitCode.USAGE, f"cannot start: {exc}")
    except OSError as exc:
        return _not_started(log, ready_fd, *start_failure(exc, paths.root))
    state: RunState = start.state
    pid = os.getpid()
    state.pid, state.pid_create_time = pid, process_create_time(pid)
    log.run_id = state.run_id
    try:
        lock.record_owner(pid)
        write_state(paths, state)
        write_pid_file(paths.pid, pid, state.pid_create_time)
    except OSError as exc:
        if not start.resumed:  # no phantom run: a state.json would say it began, then crashed
            paths.state.unlink(missing_ok=True)
        paths.pid.unlink(missing_ok=True)
        return _not_started(log, ready_fd, *start_failure(exc, paths.root))
    log.separator(f"run {state.run_id}")  # run.log exists once `start` returns
    log.event(start.note, kind="start")
    _report(ready_fd, f"ready {pid} {state.run_id}")
    log.ready()  # structlog is imported here, after the handshake
    _register(req, state, log)  # after the handshake: `start` need not wait for it

    # The loop's modules are imported after the handshake: `start` returns without them.
    from unattended.supervisor.run.loop import RelayLoop, RunContext

    sd, inhibitor = _platform_bookends(req, state, log)
    ctx = RunContext(
        project=req.project,
        paths=paths,
        git_dir=req.git_dir,
        settings=req.settings,
        state=state,
        log=log,
        prompt_source=req.prompt_source,
        environ=req.environ,
        resumed=start.resumed,
        crashed=start.crashed,
    )
    _log_settings(log, req, state)
    loop = None
    try:
        loop = RelayLoop(ctx, flags, sd, inhibitor)
        code = loop.run()
        from unattended.supervisor.run.registry import unregister

        unregister(pid)  # after an internal error the entry stays: `ps` shows it crashed
        return code
    except Exception as exc:  # a bug: leave the state non-terminal so --resume can continue
        log.event(f"internal error: {exc!r} (see {paths.daemon_stderr})", kind="internal")
        with contextlib.suppress(OSError):  # stderr may be a closed terminal
            traceback.print_exc()
        if inhibitor is not None:
            inhibitor.release()
        return ExitCode.INTERNAL_ERROR
    finally:
        _end_the_run_tree(loop.ticker.worker if loop is not None else None, state, log)
        on_refusal(None)
        lock.release()
        log.close()


def _end_the_run_tree(worker: Any, state: RunState, log: RunLog) -> None:
    """The daemon's last act on every exit path, an internal error included: nothing it started
    may go on unsupervised. Kills the worker's tree, every helper still running, and whatever
    state.json lists that is still provably this run's."""
    from unattended.platform_adapters import process, proctree

    killed: list[int] = []
    try:
        if worker is not None and not worker.finished:
            worker.kill_now()
            killed += worker.record().killed
        killed += process.end_all()
        recorded = [(d.pid, d.create_time) for d in state.descendants]
        killed += proctree.end_recorded(recorded, state.run_id)
    except Exception as exc:  # noqa: BLE001 - the lock must still be released
        log.event(f"internal error while ending the run's processes: {exc!r}", kind="internal")
    if killed:
        pids = ", ".join(str(pid) for pid in sorted(set(killed)))
        log.event(f"ended the run's remaining processes on exit (pids {pids})", kind="cleanup")


def _terminal_echo(log: RunLog, flags: Any, paths: RunPaths) -> Any:
    """``start --foreground`` prints run.log lines too, until its terminal goes away (SIGHUP,
    or EIO/EPIPE on stdout): then stdout and stderr go to daemon.stderr and the run goes on,
    logging to run.log only."""

    def lost(why: str) -> None:
        log.echo = None
        with contextlib.suppress(OSError):
            err = os.open(
                paths.root / "daemon.stderr", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
            )
            os.dup2(err, 1)
            os.dup2(err, 2)
            os.close(err)
        log.event(f"the terminal went away ({why}): the run goes on, logging to run.log only",
                  kind="terminal")  # fmt: skip

    def echo(line: str) -> None:
        if flags.hung_up:
            lost("SIGHUP")
            return
        try:
            print(line, flush=True)
        except (OSError, ValueError) as exc:
            lost(getattr(exc, "strerror", None) or type(exc).__name__)

    return echo


def _not_started(log: RunLog, ready_fd: int | None, code: int, message: str) -> int:
    """The run never began: say why where the user looks (`start`'s stderr), and in run.log
    when it can still be written."""
    log.event(message, kind="error")
    log.close()
    if ready_fd is None:  # --foreground: this process is the one the user ran
        print(f"unattended: {message}", file=sys.stderr, flush=True)
    _report(ready_fd, f"error {int(code)} {message}")
    return code


def _register(req: LaunchRequest, state: RunState, log: RunLog) -> None:
    """List this daemon in the per-user registry (`unattended ps`, `stop --all`)."""
    from unattended.contracts.timefmt import utc_iso
    from unattended.supervisor.run.registry import register

    try:
        register(req.project, state.pid, state.pid_create_time, state.run_id,
                 utc_iso(state.started_at))  # fmt: skip
    except OSError as exc:
        log.event(f"warning: not listed for `unattended ps`: {exc}", kind="warning")


def _platform_bookends(req: LaunchRequest, state: RunState, log: RunLog) -> tuple[object, object]:
    """Subreaper, systemd notify socket, sleep inhibitor: each a no-op where unsupported."""
    from unattended.platform_adapters import process, proctree
    from unattended.platform_adapters.inhibit import start_inhibitor
    from unattended.platform_adapters.sd_notify import SdNotifier

    def warn(message: str) -> None:
        log.event(f"warning: {message.removeprefix('warning: ')}", kind="warning")

    proctree.become_subreaper()  # the one place: orphans of the worker's tree come to us
    process.set_run_marker(state.run_id)  # every child we start says which run it belongs to
    sd = SdNotifier.from_env(req.environ)
    inhibitor = start_inhibitor(os.getpid(), str(req.project), warn)
    state.inhibitor = inhibitor.describe() if inhibitor.held else None
    sd.ready()
    sd.status(f"starting: iteration {state.iteration} of {state.max_iterations}")
    return sd, inhibitor


def _log_settings(log: RunLog, req: LaunchRequest, state: RunState) -> None:
    s = req.settings
    caps = [
        f"{s.hours:g}h (deadline {state.deadline:%Y-%m-%dT%H:%M:%SZ})",
        f"{s.max_iterations} iterations",
    ]
    if s.max_cost_usd:
        caps.append(f"${s.max_cost_usd:g}")
    if s.max_tokens:
        caps.append(f"{s.max_tokens:,} tokens")
    log.event(
        f"project {req.project}, prompt from {req.prompt_source.describe()}, worker "
        f"{s.claude_bin} ({s.effective_permission_mode()} permissions), caps: {', '.join(caps)}",
        kind="settings",
    )
    from unattended.safety.preflight import snapshot_ignored_warning

    if warning := snapshot_ignored_warning(s):
        log.event(f"warning: {warning}", kind="warning")


def launch_detached(req: LaunchRequest, lock: RunLock) -> tuple[int, str]:
    """Fork the daemon into its own session and wait for its readiness line.

    Returns (daemon pid, run id). The caller holds ``lock``; the daemon inherits it.
    """
    paths = req.paths
    ensure_private_dir(paths.root)
    ensure_private_dir(paths.records)
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked children
        os.close(read_fd)
        try:
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
            try:
                _become_daemon_process(paths)
            except OSError as exc:  # daemon.stderr cannot be created (full disk, read-only)
                code, message = start_failure(exc, paths.root)
                _report(write_fd, f"error {int(code)} {message}")
                os._exit(int(code))
            code = run_daemon(req, lock, write_fd)
        except BaseException:
            traceback.print_exc()
            code = ExitCode.INTERNAL_ERROR
        os._exit(int(code))
    os.close(write_fd)
    lock.release()  # our copy; the daemon's copy keeps the lock
    os.waitpid(child, 0)
    line = _read_line(read_fd, READY_TIMEOUT_S)
    os.close(read_fd)
    if line.startswith("ready "):
        _, pid, run_id = line.split(maxsplit=2)
        return int(pid), run_id
    if line.startswith("error "):
        code, _, message = line.removeprefix("error ").partition(" ")
        raise DaemonStartError(message, int(code) if code.isdigit() else ExitCode.USAGE)
    raise DaemonStartError(
        line if line else f"the daemon exited before it was ready; see {paths.daemon_stderr}"
    )


def _become_daemon_process(paths: RunPaths) -> None:
    os.umask(0o077)
    devnull = os.open(os.devnull, os.O_RDWR)
    err = open_private_file(paths.daemon_stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(err, 2)
    os.close(devnull)
    os.close(err)


def _read_line(fd: int, timeout: float) -> str:
    import time

    data = b""
    end = time.monotonic() + timeout
    while b"\n" not in data:
        remaining = end - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()
