"""A symlink (or hard link) planted where the daemon writes never carries a write outside.

One test per write path: plant a link to a victim file outside the project, run the real
writer, and check that the victim is untouched. Appends and truncating opens are refused
(UnsafePath, an OSError); atomic rewrites replace the link itself and never write through it.
The whole module runs again as an unprivileged user (``nobody``) when the tests run as root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from unattended.contracts.paths import RunPaths, lock_path
from unattended.supervisor.records import fsio
from unattended.supervisor.records.fsio import UnsafePath

PRECIOUS = "precious: never written by unattended\n"
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "victim"
    path.parent.mkdir()
    path.write_text(PRECIOUS)
    return path


@pytest.fixture
def paths(tmp_path: Path) -> RunPaths:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)  # a git dir for the lock; no git needed here
    return RunPaths(project)


def plant(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    link.symlink_to(target)


def assert_untouched(victim: Path) -> None:
    assert victim.read_text() == PRECIOUS


# ----- appends and truncating opens: refused ---------------------------------------------


def _run_log(paths: RunPaths) -> None:
    from unattended.supervisor.records.runlog import RunLog

    log = RunLog(paths.run_log, paths.events)
    log._human.write("worker said: rm -rf ~\n")  # what event() does, without its OSError guard


def _events(paths: RunPaths) -> None:
    from unattended.supervisor.records.runlog import RunLog

    RunLog(paths.run_log, paths.events)._machine.write("{}\n")


def _telemetry(paths: RunPaths) -> None:
    fsio.append_line(paths.telemetry, '{"iteration": 1}')


def _raw_log(paths: RunPaths) -> None:
    from unattended.supervisor.worker.rawlog import CappedLog

    CappedLog(paths.iteration_stdout(1), 1024)


def _raw_log_tail(paths: RunPaths) -> None:
    from unattended.supervisor.worker.rawlog import CappedLog

    log = CappedLog(paths.iteration_stdout(1), 1024)
    log.write(b"x" * 4096)  # past the head: the tail file is opened


def _worker_stderr(paths: RunPaths) -> None:
    from unattended.supervisor.worker.process import SpawnError, Worker, WorkerSpec

    spec = WorkerSpec(
        argv=["true"],
        cwd=paths.project,
        env=dict(os.environ),
        stdout_path=paths.iteration_stdout(1),
        stderr_path=paths.iteration_stderr(1),
        timeout_s=5,
        stall_s=5,
        grace_s=1,
        max_log_bytes=1 << 20,
    )
    try:
        Worker.spawn(spec)
    except SpawnError as exc:
        raise UnsafePath(str(spec.stderr_path), str(exc)) from None


def _lock(paths: RunPaths) -> None:
    from unattended.supervisor.run.lock import RunLock

    RunLock(lock_path(paths.project / ".git")).acquire()


def _steps(paths: RunPaths) -> None:
    from unattended.supervisor.records.steps import record_step

    record_step(paths, 1, {"step": 1})


def _step_run_log(paths: RunPaths) -> None:
    from unattended.supervisor.records.steps import append_run_log

    append_run_log(paths, "step 1 done")


def _budget_lock(paths: RunPaths) -> None:
    from unattended.supervisor.records import ledger

    with ledger.locked(paths):
        pass


def _hook_lock(paths: RunPaths) -> None:
    from unattended.supervisor.hook.meter import record

    record(str(paths.root), None, "a failure to count")


def _daemon_stderr(paths: RunPaths) -> None:
    fsio.open_private_file(paths.daemon_stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND)


REFUSED: dict[str, tuple[Callable[[RunPaths], Path], Callable[[RunPaths], None]]] = {
    "run.log": (lambda p: p.run_log, _run_log),
    "events.jsonl": (lambda p: p.events, _events),
    "telemetry.jsonl": (lambda p: p.telemetry, _telemetry),
    "iterations/NNNN.jsonl": (lambda p: p.iteration_stdout(1), _raw_log),
    "iterations/NNNN.jsonl.tail": (
        lambda p: p.iteration_stdout(1).with_name("0001.jsonl.tail"),
        _raw_log_tail,
    ),
    "iterations/NNNN.stderr": (lambda p: p.iteration_stderr(1), _worker_stderr),
    "<git dir>/unattended.lock": (lambda p: lock_path(p.project / ".git"), _lock),
    "steps": (lambda p: _steps_path(p), _steps),
    "run.log (unattended step)": (lambda p: p.run_log, _step_run_log),
    "budget lock": (lambda p: p.records / ".budget.lock", _budget_lock),
    "context-meter lock": (lambda p: p.root / ".context-meter.lock", _hook_lock),
    "daemon.stderr": (lambda p: p.daemon_stderr, _daemon_stderr),
}


def _steps_path(paths: RunPaths) -> Path:
    from unattended.supervisor.records.steps import steps_path

    return steps_path(paths, 1)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_symlink_where_we_append_or_truncate_is_refused(
    name: str, paths: RunPaths, victim: Path
) -> None:
    where, write = REFUSED[name]
    fsio.ensure_private_dir(paths.iterations)
    plant(where(paths), victim)
    with pytest.raises(UnsafePath, match="symlink"):
        write(paths)
    assert_untouched(victim)
    assert where(paths).is_symlink()  # refused, not "repaired" behind the user's back


@pytest.mark.parametrize("name", ["run.log", "telemetry.jsonl", "iterations/NNNN.jsonl"])
def test_a_hard_link_where_we_write_is_refused(name: str, paths: RunPaths, victim: Path) -> None:
    where, write = REFUSED[name]
    fsio.ensure_private_dir(paths.iterations)
    os.link(victim, where(paths))
    with pytest.raises(UnsafePath, match="hard link"):
        write(paths)
    assert_untouched(victim)


# ----- atomic rewrites: the link is replaced, never followed ------------------------------


def _state(paths: RunPaths) -> None:
    fsio.atomic_write(paths.state, '{"schema_version": 1}\n')


def _pid(paths: RunPaths) -> None:
    from unattended.supervisor.records.pidfile import write_pid_file

    write_pid_file(paths.pid, os.getpid(), None)


def _worker_settings(paths: RunPaths) -> None:
    from unattended.supervisor.worker.settings_file import write_worker_settings

    write_worker_settings(paths, ["true"])


def _budget(paths: RunPaths) -> None:
    from unattended.supervisor.records import ledger

    with ledger.locked(paths, fresh=True):
        pass


def _control(paths: RunPaths) -> None:
    from unattended.supervisor.run.control import write_request

    write_request(paths, hours=1.0, max_iterations=None, max_cost_usd=None)


def _meter(paths: RunPaths) -> None:
    from unattended.supervisor.hook.meter import record

    record(str(paths.root), None, "a failure to count")


REPLACED: dict[str, tuple[Callable[[RunPaths], Path], Callable[[RunPaths], None]]] = {
    "state.json": (lambda p: p.state, _state),
    "state.json temp file": (lambda p: p.records / f".state.json.{os.getpid()}.tmp", _state),
    "supervisor.pid": (lambda p: p.pid, _pid),
    "worker-settings.json": (lambda p: p.worker_settings, _worker_settings),
    "budget.json": (lambda p: p.budget, _budget),
    "control.json": (lambda p: p.control, _control),
    "context-meter.json": (lambda p: p.context_meter, _meter),
}


@pytest.mark.parametrize("name", sorted(REPLACED))
def test_an_atomic_rewrite_replaces_a_planted_symlink_without_following_it(
    name: str, paths: RunPaths, victim: Path
) -> None:
    where, write = REPLACED[name]
    fsio.ensure_private_dir(paths.root)
    fsio.ensure_private_dir(paths.records)
    plant(where(paths), victim)
    write(paths)
    assert_untouched(victim)
    assert not where(paths).is_symlink()
    assert not list(paths.root.glob(".*.tmp")) and not list(paths.records.glob(".*.tmp"))


# ----- the directories themselves ------------------------------------------------------


# What each of the two directories receives: the work tree's, and the records in the git dir.
WRITERS_OF = {
    "root": [_pid, _meter, _worker_settings, _control],
    "records": [_state, _telemetry, _run_log, _raw_log, _budget_lock, _daemon_stderr],
}


@pytest.mark.parametrize("which", sorted(WRITERS_OF))
def test_a_symlinked_state_dir_receives_nothing(
    which: str, paths: RunPaths, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plant(getattr(paths, which), elsewhere)
    for write in WRITERS_OF[which]:
        with pytest.raises(UnsafePath, match="symlink"):
            write(paths)
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_iterations_dir_receives_nothing(paths: RunPaths, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plant(paths.iterations, elsewhere)
    with pytest.raises(UnsafePath):
        _raw_log(paths)
    assert list(elsewhere.iterdir()) == []


def test_handoff_notes_are_never_read_through_a_symlink(paths: RunPaths, victim: Path) -> None:
    plant(paths.handoff, victim)
    with pytest.raises(UnsafePath):
        fsio.read_private_bytes(paths.handoff)
    paths.handoff.unlink()
    paths.handoff.write_text("notes\n")
    assert fsio.read_private_bytes(paths.handoff) == b"notes\n"


def test_the_report_never_writes_through_a_symlinked_reports_dir(
    paths: RunPaths, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plant(paths.root / "reports", elsewhere)
    with pytest.raises(UnsafePath):
        fsio.atomic_write(paths.root / "reports" / "run1" / "report.md", "# report\n")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("which", sorted(WRITERS_OF))
def test_an_existing_state_dir_is_forced_private(which: str, paths: RunPaths) -> None:
    directory = getattr(paths, which)
    directory.mkdir(parents=True, mode=0o755)
    os.chmod(directory, 0o755)  # what a clone, or an older version, leaves
    WRITERS_OF[which][0](paths)
    assert directory.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in directory.iterdir() if p.is_file())


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory away")
@pytest.mark.parametrize("which", sorted(WRITERS_OF))
def test_a_state_dir_owned_by_someone_else_is_refused(which: str, paths: RunPaths) -> None:
    directory = getattr(paths, which)
    directory.mkdir(parents=True)
    os.chown(directory, 65534, 65534)
    with pytest.raises(UnsafePath, match="owned by uid 65534"):
        WRITERS_OF[which][0](paths)


def test_a_project_under_a_directory_named_like_ours_is_left_alone(tmp_path: Path) -> None:
    """Only the tree below the last ``.unattended`` is ours: the project's own directories
    keep their mode, and a file written directly in the git dir is checked on its own."""
    project = tmp_path / ".unattended-src" / "unattended"
    (project / ".git").mkdir(parents=True)
    os.chmod(project, 0o755)
    os.chmod(project / ".git", 0o755)
    fsio.append_line(RunPaths(project).telemetry, "{}")
    from unattended.supervisor.run.lock import RunLock

    lock = RunLock(lock_path(project / ".git"))
    lock.acquire()
    lock.release()
    assert project.stat().st_mode & 0o777 == 0o755
    assert (project / ".git").stat().st_mode & 0o777 == 0o755


def test_the_daemon_logs_a_refused_write_once(paths: RunPaths, victim: Path) -> None:
    from unattended.supervisor.records.runlog import RunLog

    log = RunLog(paths.run_log, paths.events)
    fsio.on_refusal(log.refused)
    try:
        plant(paths.telemetry, victim)
        for _ in range(3):
            with pytest.raises(UnsafePath):
                _telemetry(paths)
        log.event("the run goes on")
    finally:
        fsio.on_refusal(None)
        log.close()
    assert_untouched(victim)
    lines = paths.run_log.read_text().splitlines()
    refusals = [line for line in lines if "refused to write" in line]
    assert len(refusals) == 1 and str(paths.telemetry) in refusals[0]
    assert "symlink" in refusals[0] and lines[-1].endswith("the run goes on")
    kinds = [json.loads(line)["kind"] for line in paths.events.read_text().splitlines()]
    assert kinds.count("refused_write") == 1


# ----- the same, as a normal user ------------------------------------------------------


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or "UNATTENDED_AS_NOBODY" in os.environ,
    reason="needs root and setpriv to become nobody (or is already the unprivileged run)",
)
def test_every_vector_holds_as_an_unprivileged_user() -> None:
    base = Path(tempfile.mkdtemp(prefix="unattended-nobody-"))  # pytest's own is root's, 0700
    os.chown(base, 65534, 65534)
    try:
        _run_as_nobody(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run_as_nobody(base: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(base),
        "PYTHONPATH": str(REPO_ROOT),
        "UNATTENDED_AS_NOBODY": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
    argv += ["-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={base / 't'}"]
    argv += [str(Path(__file__).relative_to(REPO_ROOT))]
    proc = subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
