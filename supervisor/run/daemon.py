"""Daemon lifecycle: detach, readiness handshake, lock, pid file, and the run's bookends.

``start`` takes the lock *before* forking, so two concurrent starts can never both win: the
daemon inherits the locked file description and the parent's copy is closed. The daemon is
forked after the CLI's imports (no second interpreter start-up) and reports back through a
pipe once it has written ``status: starting``.
"""

from __future__ import annotations

import os
import select
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from unattended.contracts.exit_codes import ExitCode
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.contracts.state import RunState, StateFileError
from unattended.supervisor.records.fsio import ensure_private_dir
from unattended.supervisor.records.runlog import RunLog
from unattended.supervisor.run.lock import RunLock
from unattended.supervisor.run.prompt import PromptSource

READY_TIMEOUT_S = 15.0


class DaemonStartError(Exception):
    """The daemon could not start; the message is one line for the user."""


@dataclass
class LaunchRequest:
    project: Path
    git_dir: Path
    settings: Settings
    sources: dict[str, str]
    prompt_source: PromptSource
    resume: bool = False
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
    log = RunLog(paths.run_log, paths.events)
    if req.echo:
        log.echo = lambda line: print(line, flush=True)
    try:
        start = begin_run(paths, req.settings, req.sources, req.resume)
    except (StateFileError, OSError) as exc:
        message = f"cannot start: {exc}"
        log.event(message, kind="error")
        _report(ready_fd, "error " + message)
        return ExitCode.USAGE
    state: RunState = start.state
    pid = os.getpid()
    state.pid, state.pid_create_time = pid, process_create_time(pid)
    lock.record_owner(pid)
    log.run_id = state.run_id
    write_state(paths, state)
    write_pid_file(paths.pid, pid, state.pid_create_time)
    log.separator(f"run {state.run_id}")  # run.log exists once `start` returns
    log.event(start.note, kind="start")
    _report(ready_fd, f"ready {pid} {state.run_id}")
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
    try:
        code = RelayLoop(ctx, flags, sd, inhibitor).run()
        from unattended.supervisor.run.registry import unregister

        unregister(pid)  # after an internal error the entry stays: `ps` shows it crashed
        return code
    except Exception as exc:  # a bug: leave the state non-terminal so --resume can continue
        log.event(f"internal error: {exc!r} (see .unattended/daemon.stderr)", kind="internal")
        traceback.print_exc()
        if inhibitor is not None:
            inhibitor.release()
        return ExitCode.INTERNAL_ERROR
    finally:
        lock.release()
        log.close()


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
    from unattended.platform_adapters.inhibit import start_inhibitor
    from unattended.platform_adapters.sd_notify import SdNotifier
    from unattended.platform_adapters.subreaper import become_child_subreaper

    def warn(message: str) -> None:
        log.event(f"warning: {message.removeprefix('warning: ')}", kind="warning")

    become_child_subreaper()
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


def launch_detached(req: LaunchRequest, lock: RunLock) -> tuple[int, str]:
    """Fork the daemon into its own session and wait for its readiness line.

    Returns (daemon pid, run id). The caller holds ``lock``; the daemon inherits it.
    """
    paths = req.paths
    ensure_private_dir(paths.root)
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
            _become_daemon_process(paths)
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
        raise DaemonStartError(line.removeprefix("error "))
    raise DaemonStartError(
        line if line else "the daemon exited before it was ready; see .unattended/daemon.stderr"
    )


def _become_daemon_process(paths: RunPaths) -> None:
    os.umask(0o077)
    devnull = os.open(os.devnull, os.O_RDWR)
    err = os.open(paths.root / "daemon.stderr", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
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
