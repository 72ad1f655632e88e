"""Sleep inhibitor with real processes: held for exactly the owner's life, never leaked."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.platform_adapters.fake_tools import (
    fake_systemd_inhibit,
    gone,
    path_with,
    recorded,
    tree,
    wait_gone,
    write_tool,
)
from unattended.platform_adapters import inhibit
from unattended.platform_adapters.inhibit import (
    ChildInhibitor,
    NullInhibitor,
    WindowsInhibitor,
    inhibitor_alive,
    inhibitor_argv,
    start_inhibitor,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)


@pytest.fixture
def fake_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose PATH has the fake systemd-inhibit first; returns (env, record dir)."""
    bin_dir, records = tmp_path / "bin", tmp_path / "records"
    fake_systemd_inhibit(bin_dir, records)
    env = {**os.environ, "PATH": path_with(bin_dir)}
    return env, records


def _logind_reachable() -> bool:
    tool = shutil.which("systemd-inhibit")
    if tool is None:
        return False
    done = subprocess.run([tool, "--list"], capture_output=True, timeout=10, check=False)
    return done.returncode == 0


def test_fake_inhibitor_argv_and_release(fake_env: tuple[dict[str, str], Path]) -> None:
    env, records = fake_env
    log = Log()
    inh = start_inhibitor(os.getpid(), "/my project/ü\nx", log, platform="linux", environ=env)
    try:
        assert isinstance(inh, ChildInhibitor) and inh.held, log.lines
        assert log.lines == []
        argv = recorded(records, "systemd-inhibit")[0]
        assert argv == [
            "--what=idle:sleep",
            "--who=unattended",
            "--why=/my project/ü x",  # one line for `systemd-inhibit --list`
            "--mode=block",
            shutil.which("tail", path=env["PATH"]),
            f"--pid={os.getpid()}",
            "-f",
            "/dev/null",
        ]
        pids = tree(inh.pid)
        assert len(pids) == 2, pids  # the inhibitor and the tail it holds the lock around
        assert inhibitor_alive(inh.pid)
        record = inh.record()
        assert record["held"] and record["pid"] == inh.pid and record["kind"] == "systemd-inhibit"
    finally:
        inh.release()
    assert wait_gone(pids) == []
    assert not inh.held and inh.pid is None
    assert not inhibitor_alive(pids[0])
    inh.release()  # twice is fine
    assert log.lines == []


def test_inhibitor_released_when_owner_is_killed(fake_env: tuple[dict[str, str], Path]) -> None:
    """kill -9 of the owner: `tail --pid` notices, so the inhibitor ends with no one's help."""
    env, _ = fake_env
    code = (
        "import os, sys, time\n"
        "from platform_adapters.inhibit import start_inhibitor\n"
        "inh = start_inhibitor(os.getpid(), 'x', print, platform='linux')\n"
        "print('PID', inh.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line.startswith("PID "), line
        pid = int(line.split()[1])
        pids = tree(pid)
        assert len(pids) == 2 and not gone(pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert wait_gone(pids, timeout=10) == [], "inhibitor outlived its owner"
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()


def test_missing_tool_warns_once_and_is_a_noop(tmp_path: Path) -> None:
    log = Log()
    env = {"PATH": str(tmp_path)}  # neither systemd-inhibit nor tail
    inh = start_inhibitor(os.getpid(), "p", log, platform="linux", environ=env)
    assert isinstance(inh, NullInhibitor)
    assert not inh.held and inh.pid is None
    assert inh.record() == {
        "kind": "none",
        "pid": None,
        "held": False,
        "detail": "systemd-inhibit not found on PATH",
    }
    inh.release()
    assert inh.describe() == "none: systemd-inhibit not found on PATH"
    assert len(log.lines) == 1 and "systemd-inhibit not found" in log.lines[0]
    assert not log.lines[0].startswith("warning")  # the caller adds its own prefix


def test_inhibitor_that_fails_at_once_warns_once(tmp_path: Path) -> None:
    """What a container without logind gives: the tool prints an error and exits 1."""
    bin_dir = tmp_path / "bin"
    write_tool(bin_dir, "systemd-inhibit", 'echo "Failed to connect to bus: No medium" >&2; exit 1')
    log = Log()
    env = {"PATH": path_with(bin_dir)}
    inh = start_inhibitor(os.getpid(), "p", log, platform="linux", environ=env, settle_s=5)
    assert isinstance(inh, NullInhibitor) and not inh.held
    assert len(log.lines) == 1
    assert "exited with code 1: Failed to connect to bus: No medium" in log.lines[0]
    assert inh.describe() == (
        "none: systemd-inhibit exited with code 1: Failed to connect to bus: No medium"
    )


def test_inhibitor_that_ends_later_is_reported_once(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    write_tool(bin_dir, "systemd-inhibit", "sleep 0.5; echo 'polkit said no' >&2; exit 1")
    log = Log()
    env = {"PATH": path_with(bin_dir)}
    inh = start_inhibitor(os.getpid(), "p", log, platform="linux", environ=env, settle_s=0.05)
    assert isinstance(inh, ChildInhibitor) and inh.held
    pid = inh.pid
    assert pid is not None
    deadline = time.monotonic() + 10
    while inh.held and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not inh.held and not inh.held
    assert len(log.lines) == 1 and "polkit said no" in log.lines[0]
    assert "polkit said no" in inh.describe()
    inh.release()
    assert gone(pid)


@pytest.mark.skipif(not _logind_reachable(), reason="no logind reachable (container)")
def test_real_systemd_inhibit_held_and_released() -> None:
    log = Log()
    inh = start_inhibitor(os.getpid(), "unattended test", log, platform="linux")
    assert inh.held, log.lines
    assert inh.pid is not None
    pids = tree(inh.pid)
    listed = subprocess.run(
        ["systemd-inhibit", "--list"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    assert "unattended" in listed
    inh.release()
    assert wait_gone(pids) == []


@pytest.mark.skipif(
    shutil.which("systemd-inhibit") is None or _logind_reachable(),
    reason="needs a real systemd-inhibit without logind",
)
def test_real_systemd_inhibit_without_logind_is_a_warned_noop() -> None:
    log = Log()
    inh = start_inhibitor(os.getpid(), "p", log, platform="linux", settle_s=5)
    assert isinstance(inh, NullInhibitor)
    assert len(log.lines) == 1 and "systemd-inhibit exited with code" in log.lines[0]


def test_caffeinate_argv_on_macos(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    caffeinate = write_tool(bin_dir, "caffeinate", "exit 0")
    assert inhibitor_argv("darwin", 4321, "/p", str(bin_dir)) == (
        "caffeinate",
        [str(caffeinate), "-i", "-w", "4321"],
    )
    assert inhibitor_argv("darwin", 4321, "/p", str(tmp_path / "none")) == (
        "caffeinate not found on PATH"
    )


def test_caffeinate_path_runs_and_is_released(tmp_path: Path) -> None:
    """The macOS code path end to end, with a caffeinate stand-in that waits for -w <pid>."""
    bin_dir = tmp_path / "bin"
    write_tool(bin_dir, "caffeinate", 'exec tail --pid="$3" -f /dev/null')
    log = Log()
    inh = start_inhibitor(
        os.getpid(), "p", log, platform="darwin", environ={"PATH": path_with(bin_dir)}
    )
    assert isinstance(inh, ChildInhibitor) and inh.kind == "caffeinate" and inh.held, log.lines
    pid = inh.pid
    assert pid is not None
    inh.release()
    assert gone(pid) and log.lines == []


def test_unsupported_platform_is_a_noop() -> None:
    log = Log()
    inh = start_inhibitor(os.getpid(), "p", log, platform="sunos5")
    assert isinstance(inh, NullInhibitor) and len(log.lines) == 1


class FakeKernel32:
    def __init__(self, answer: int = 0x80000000) -> None:
        self.calls: list[int] = []
        self.answer = answer

    def SetThreadExecutionState(self, flags: int) -> int:  # noqa: N802 - the Win32 name
        self.calls.append(flags)
        return self.answer


def test_windows_execution_state_calls() -> None:
    kernel = FakeKernel32()
    inh = WindowsInhibitor(kernel)
    assert inh.held and inh.record()["kind"] == "SetThreadExecutionState"
    inh.release()
    inh.release()
    assert kernel.calls == [
        inhibit.ES_CONTINUOUS | inhibit.ES_SYSTEM_REQUIRED,
        inhibit.ES_CONTINUOUS,
    ]
    assert not inh.held
    with pytest.raises(OSError):
        WindowsInhibitor(FakeKernel32(answer=0))


def test_windows_path_off_windows_is_a_warned_noop() -> None:
    log = Log()
    inh = start_inhibitor(os.getpid(), "p", log, platform="win32")
    assert isinstance(inh, NullInhibitor)
    assert len(log.lines) == 1 and "SetThreadExecutionState unavailable" in log.lines[0]


def test_inhibitor_alive_rejects_other_processes() -> None:
    assert not inhibitor_alive(None)
    assert not inhibitor_alive(0)
    assert not inhibitor_alive(os.getpid())  # alive, but not an inhibitor (pid reuse guard)
    proc = subprocess.Popen(["sleep", "30"])
    proc.kill()
    proc.wait()
    assert not inhibitor_alive(proc.pid)
