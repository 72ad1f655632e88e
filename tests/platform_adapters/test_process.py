"""The one process module with real processes: timeouts, one kill policy for the whole tree
(sessions of their own and detached processes included), the tick while waiting, and git."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from unattended.platform_adapters import process
from unattended.supervisor.git.facts import GitError, run_git
from unattended.supervisor.run.iteration import run_done_when


def read_pid(path: Path, timeout: float = 5.0) -> tuple[int, float]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = path.read_text().strip() if path.exists() else ""
        if text:
            pid = int(text)
            try:
                return pid, psutil.Process(pid).create_time()
            except psutil.NoSuchProcess:  # already ended (and reaped, when we are a subreaper)
                return pid, 0.0
        time.sleep(0.02)
    raise AssertionError(f"no pid in {path}")


def gone(pid: int, created: float, timeout: float = 5.0) -> bool:
    """Dead, a zombie nobody reaped yet (init in a container), or the PID reused."""
    end = time.monotonic() + timeout
    while True:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() != created or proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)


def kill_if_alive(pid: int, created: float) -> None:
    if not gone(pid, created, timeout=0):
        os.kill(pid, 9)


def test_timeout_ends_the_tree_including_a_process_in_its_own_session(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"setsid sleep 30 & echo $! > {pidfile}; sleep 30"
    started = time.monotonic()
    handle = process.Handle(script, shell=True)
    pid, created = read_pid(pidfile)
    try:
        outcome = handle.finish(time.monotonic() + 0.5)
        assert outcome.timed_out and outcome.returncode is None
        assert time.monotonic() - started < 10
        assert gone(pid, created), "the grandchild in its own session survived"
        assert handle.proc.returncode is not None  # reaped
        assert handle.pid not in {pid for pid, _ in process.live_identities()}
    finally:
        kill_if_alive(pid, created)


def test_a_detached_daemon_of_a_sweeping_command_is_ended_when_it_exits(tmp_path: Path) -> None:
    """A notify command or --done-when that exits 0 but leaves a daemon in its own session:
    found by its spawn token (or as an adopted orphan when this process is a subreaper)."""
    pidfile = tmp_path / "pid"
    script = f"setsid sleep 30 >/dev/null 2>&1 & echo $! > {pidfile}; sleep 0.3"
    outcome = process.run(script, shell=True, timeout_s=10, policy=process.DETACHING)
    pid, created = read_pid(pidfile, timeout=0.1)
    try:
        assert outcome.ok
        assert gone(pid, created), "the detached process outlived the command"
    finally:
        kill_if_alive(pid, created)


def test_the_tick_runs_while_a_child_blocks_and_abort_ends_it() -> None:
    ticks: list[float] = []
    started = time.monotonic()
    with process.ticking(lambda: ticks.append(time.monotonic()), every_s=0.2):
        outcome = process.run(["sleep", "30"], timeout_s=60, abort=lambda: len(ticks) >= 3)
    assert len(ticks) >= 3
    assert outcome.aborted and outcome.returncode is None and not outcome.timed_out
    assert time.monotonic() - started < 10


def test_wait_exit_returns_at_the_exit_and_leaves_the_child_to_its_owner() -> None:
    handle = process.Handle(["sleep", "0.3"])
    assert not handle.wait_exit(0.01)
    started = time.monotonic()
    assert handle.wait_exit(30.0)
    assert time.monotonic() - started < 15
    # Not reaped: a zombie keeps its PID (and process group) ours until the owner reaps it.
    assert handle.proc.returncode is None and handle.exited()
    assert handle.finish(time.monotonic() + 10).ok
    assert handle.exit_fd is None and handle.pid not in {p for p, _ in process.live_identities()}


def test_a_running_helper_is_listed_for_state_json_with_its_start_time() -> None:
    handle = process.Handle(["sleep", "30"])
    try:
        listed = dict(process.live_identities())
        assert listed[handle.pid] == psutil.Process(handle.pid).create_time()
    finally:
        handle.end()
    assert handle.pid not in dict(process.live_identities())


def test_a_tick_of_the_loop_itself_puts_off_the_tick_of_a_wait() -> None:
    ticks: list[float] = []
    with process.ticking(lambda: ticks.append(time.monotonic()), every_s=1.0):
        time.sleep(1.05)
        process.ticked()  # the loop ticked just now (the worker's exit)
        process.tick_if_due()  # git right after it: no second tick at once
        assert ticks == []
        time.sleep(1.05)
        process.tick_if_due()
        assert len(ticks) == 1


def test_call_ticking_ticks_and_has_its_own_timeout() -> None:
    ticks: list[int] = []
    with process.ticking(lambda: ticks.append(1), every_s=0.1):
        assert process.call_ticking(lambda: time.sleep(0.5) or 42, timeout_s=5) == 42
        assert len(ticks) >= 2
        with pytest.raises(TimeoutError):
            process.call_ticking(lambda: time.sleep(3), timeout_s=0.3)


def test_children_carry_the_run_marker_and_a_spawn_token() -> None:
    process.set_run_marker("run-xyz")
    try:
        out = process.run(
            ["sh", "-c", "echo $UNATTENDED_RUN_ID $UNATTENDED_SPAWN"], timeout_s=10
        ).stdout.split()
    finally:
        process.set_run_marker(None)
    assert out[0] == "run-xyz" and len(out[1]) == 32


def test_a_hanging_git_times_out_and_is_ended(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pidfile = tmp_path / "pid"
    fake = bindir / "git"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    started = time.monotonic()
    with pytest.raises(GitError, match="did not finish within 0.5s"):
        run_git(tmp_path, "status", timeout_s=0.5)
    assert time.monotonic() - started < 10
    pid, _ = int(pidfile.read_text()), 0
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_git_output_is_complete_and_input_reaches_it(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    big = "x" * 200_000 + "\n"
    blob = run_git(tmp_path, "hash-object", "-w", "--stdin", input=big).strip()
    assert run_git(tmp_path, "cat-file", "blob", blob) == big


def test_done_when_ends_what_it_detached_and_stops_on_abort(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    command = f"setsid sleep 30 >/dev/null 2>&1 & echo $! > {pidfile}; exit 0"
    assert run_done_when(command, tmp_path, dict(os.environ)) is True
    pid, created = read_pid(pidfile, timeout=0.1)
    try:
        assert gone(pid, created)
    finally:
        kill_if_alive(pid, created)
    started = time.monotonic()
    assert run_done_when("sleep 30", tmp_path, dict(os.environ), abort=lambda: True) is False
    assert time.monotonic() - started < 5


def test_a_slow_git_keeps_the_tick_going(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "git"
    fake.write_text("#!/bin/sh\nsleep 1.5\necho ok\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    ticks: list[int] = []
    with process.ticking(lambda: ticks.append(1), every_s=0.2):
        assert run_git(tmp_path, "status") == "ok\n"
    assert len(ticks) >= 3


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd on this platform")
def test_a_wait_wakes_at_the_exit_through_a_pidfd_that_is_closed_when_reaped() -> None:
    fds_before = set(os.listdir("/proc/self/fd"))
    handle = process.Handle(["sh", "-c", "cat >/dev/null"], stdin=subprocess.PIPE)
    assert handle.exit_fd is not None  # the wait below sleeps on it, not on a poll interval
    assert f"{handle.exit_fd}" in os.listdir("/proc/self/fd")
    handle.wait_exit(0.05)  # still running: the whole slice passes
    assert not handle.exited()
    assert handle.proc.stdin is not None
    handle.proc.stdin.close()  # cat reads EOF and exits
    done = handle.finish(time.monotonic() + 10)
    assert done.returncode == 0
    assert handle.exit_fd is None
    assert set(os.listdir("/proc/self/fd")) == fds_before  # nothing leaked, the pidfd included


def test_the_tree_snapshot_finds_what_psutil_finds_sessions_of_their_own_included() -> None:
    from unattended.platform_adapters import proctree

    root = subprocess.Popen(
        ["sh", "-c", "sleep 30 & setsid sh -c 'sleep 30 & wait' & sh -c 'sleep 30' & wait"]
    )
    try:
        expected: set[int] = set()
        end = time.monotonic() + 5
        while time.monotonic() < end:
            expected = {p.pid for p in psutil.Process(root.pid).children(recursive=True)}
            if len(expected) >= 5:  # sleep, setsid sh + its sleep, sh + its sleep
                break
            time.sleep(0.02)
        assert len(expected) >= 5
        assert {p.pid for p in proctree.snapshot_tree(root.pid)} == expected
    finally:
        for proc in psutil.Process(root.pid).children(recursive=True):
            proc.kill()
        root.kill()
        root.wait()
