"""The real daemon under a service manager's eyes: sd_notify, the sleep inhibitor, notifications.

`start --foreground` is what the systemd unit runs; here the test plays systemd: it binds the
NOTIFY_SOCKET, sets WATCHDOG_USEC/WATCHDOG_PID (the pid of the daemon itself, via `sh -c 'export
WATCHDOG_PID=$$; exec ...'`) and stops the daemon with SIGTERM. A fake `systemd-inhibit` on PATH
stands in for logind, which containers lack.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import read_state, run_cli, wait_for, wait_terminal
from tests.fakes.claude_fixture import FakeClaude
from tests.platform_adapters.fake_tools import (
    fake_systemd_inhibit,
    recorded,
    recording_tool,
    tree,
    wait_gone,
    write_tool,
)
from tests.platform_adapters.notify_socket import NotifySocket

SLOW = [[{"do": "sleep", "seconds": 1}, "commit", "text"]]  # repeats: one slow iteration each
FAST = ["--allowed-tools", "Bash", "--grace-seconds", "2"]


@pytest.fixture
def tools(tmp_path: Path) -> tuple[Path, Path]:
    """(bin dir with fake systemd-inhibit and notify-send, their record dir)."""
    bin_dir, records = tmp_path / "tools-bin", tmp_path / "tools-records"
    fake_systemd_inhibit(bin_dir, records)
    recording_tool(bin_dir, "notify-send", records)
    return bin_dir, records


@pytest.fixture
def env(hermetic_env: dict[str, str], tools: tuple[Path, Path]) -> dict[str, str]:
    return {**hermetic_env, "PATH": f"{tools[0]}{os.pathsep}{hermetic_env['PATH']}"}


@pytest.fixture
def notify_sock(tmp_path: Path) -> Iterator[NotifySocket]:
    with NotifySocket(tmp_path) as sock:
        yield sock


def spawn_foreground(project: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    daemon = [sys.executable, "-m", "unattended", "start", "--foreground", *FAST, *extra]
    script = f"export WATCHDOG_PID=$$; exec {shlex.join(daemon)}"
    return subprocess.Popen(
        ["sh", "-c", script],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(sock: NotifySocket, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """READY=1 from the daemon, or fail with what it printed (it may have exited instead)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(m.get("READY") == "1" for m in sock.messages):
            return
        if proc.poll() is not None:
            break
        sock.drain(timeout=0.2)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"no READY=1 (exit {proc.returncode}); stdout: {out!r}; stderr: {err!r}")


def inhibitor_pids(records: Path, daemon_pid: int) -> list[int]:
    """The fake inhibitor started for `daemon_pid` (its argv names the pid) and its tail."""
    for path in records.glob("systemd-inhibit.*.argv"):
        argv = path.read_text().split("\0")
        if f"--pid={daemon_pid}" in argv:
            return tree(int(path.name.split(".")[1]))
    return []


def test_foreground_daemon_speaks_sd_notify(
    project: Path,
    fake_claude: FakeClaude,
    env: dict[str, str],
    tools: tuple[Path, Path],
    notify_sock: NotifySocket,
    tmp_path: Path,
) -> None:
    fake_claude.script(SLOW)
    seen = tmp_path / "notify-cmd.env"
    cmd = f"env | grep ^UNATTENDED_ > {shlex.quote(str(seen))}"
    full_env = {**env, **notify_sock.env(watchdog_usec=400_000)}
    proc = spawn_foreground(project, full_env, "--notify-cmd", cmd)
    try:
        wait_ready(notify_sock, proc)
        notify_sock.wait_for("WATCHDOG=1", count=3, timeout=30)
        wait_for(lambda: any("running" in m.get("STATUS", "") for m in notify_sock.messages), 30)
        # The inhibitor is held while the daemon runs, tied to the daemon's pid.
        pids = inhibitor_pids(tools[1], proc.pid)
        assert len(pids) == 2, recorded(tools[1], "systemd-inhibit")
        assert read_state(project).get("inhibitor"), read_state(project)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 6, (out, err)
    notify_sock.drain(timeout=0.5)
    msgs = notify_sock.messages
    first_ready = next(i for i, m in enumerate(msgs) if m.get("READY") == "1")
    stopping = [i for i, m in enumerate(msgs) if m.get("STOPPING") == "1"]
    assert stopping and stopping[0] > first_ready
    watchdogs = [i for i, m in enumerate(msgs) if m.get("WATCHDOG") == "1"]
    assert len(watchdogs) >= 3
    statuses = [m["STATUS"] for m in msgs if "STATUS" in m]
    assert any("running" in s and "iteration 1" in s for s in statuses), statuses
    assert all("\n" not in s for s in statuses)
    # Workers never see the service manager's variables.
    calls = fake_claude.calls()
    assert calls
    for call in calls:
        assert not call["notify_socket"]
        assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} & set(call["env_names"])
    # The inhibitor went with the daemon; the user heard how the run ended.
    assert wait_gone(pids, timeout=10) == []
    state = read_state(project)
    assert state["status"] == "stopped"
    assert "UNATTENDED_STATUS=stopped" in seen.read_text()
    sent = recorded(tools[1], "notify-send")
    assert sent and sent[-1][2].startswith("unattended: stopped")


def test_watchdog_for_another_pid_is_ignored(
    project: Path, fake_claude: FakeClaude, env: dict[str, str], notify_sock: NotifySocket
) -> None:
    """WATCHDOG_PID names someone else (e.g. a wrapper): READY yes, no WATCHDOG=1 from us."""
    fake_claude.script(SLOW)
    full_env = {**env, **notify_sock.env(watchdog_usec=400_000, watchdog_pid=1)}
    daemon = [sys.executable, "-m", "unattended", "start", "--foreground", *FAST]
    proc = subprocess.Popen(
        daemon,
        cwd=project,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        notify_sock.wait_for("READY=1", timeout=30)
        end = time.monotonic() + 2.5  # > 10 watchdog intervals of 0.2 s
        while time.monotonic() < end:
            notify_sock.drain(timeout=0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 6, (out, err)
    finally:
        proc.kill()
        proc.wait()
    notify_sock.drain(timeout=0.5)
    assert not any("WATCHDOG" in m for m in notify_sock.messages)
    assert any(m.get("STOPPING") == "1" for m in notify_sock.messages)


@pytest.mark.parametrize("how", ["stop", "stop --now", "kill -9"])
def test_inhibitor_gone_after_daemon_ends(
    how: str,
    project: Path,
    fake_claude: FakeClaude,
    env: dict[str, str],
    tools: tuple[Path, Path],
) -> None:
    fake_claude.script(SLOW)
    started = run_cli(["start", *FAST], env, cwd=project)
    assert started.returncode == 0, started.stderr
    pid = read_state(project)["pid"]
    assert wait_for(lambda: len(inhibitor_pids(tools[1], pid)) == 2, timeout=10)
    pids = inhibitor_pids(tools[1], pid)
    held = f"held: systemd-inhibit (pid {pids[0]})"
    assert wait_for(lambda: held in run_cli(["status"], env, cwd=project).stdout, timeout=15)
    if how == "kill -9":
        os.kill(pid, signal.SIGKILL)
    else:
        done = run_cli([*how.split(), "--wait", "--timeout", "60"], env, cwd=project, timeout=90)
        assert done.returncode == 0, done.stderr
        assert wait_terminal(project, timeout=60)["status"] == "stopped"
    assert wait_gone(pids, timeout=15) == [], f"inhibitor outlived the daemon ({how})"
    status = run_cli(["status"], env, cwd=project)
    assert "inhibitor  none held" in status.stdout, status.stdout


def test_no_inhibitor_is_one_warning_and_the_run_goes_on(
    project: Path, fake_claude: FakeClaude, hermetic_env: dict[str, str], tmp_path: Path
) -> None:
    """What a container without logind does: systemd-inhibit fails at once."""
    bin_dir = tmp_path / "failing-bin"
    write_tool(bin_dir, "systemd-inhibit", "echo 'Failed to connect to bus' >&2; exit 1")
    env = {**hermetic_env, "PATH": f"{bin_dir}{os.pathsep}{hermetic_env['PATH']}"}
    fake_claude.script([["commit", "done"]])
    started = run_cli(["start", *FAST], env, cwd=project)
    assert started.returncode == 0, started.stderr
    assert wait_terminal(project, timeout=60)["status"] == "done"
    log = (project / ".unattended" / "run.log").read_text()
    warnings = [line for line in log.splitlines() if "sleep inhibitor" in line]
    assert len(warnings) == 1, warnings
    assert "Failed to connect to bus" in warnings[0] and "warning: warning" not in warnings[0]
    status = run_cli(["status"], env, cwd=project)
    assert "inhibitor  none held" in status.stdout


def test_usage_limit_wait_and_the_end_are_notified(
    project: Path,
    fake_claude: FakeClaude,
    env: dict[str, str],
    tools: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """The user hears when the run waits on a usage limit, and again when it ends."""
    fake_claude.script([[{"do": "usage_limit", "kind": "session", "resets_in": 2}], ["done"]])
    (project / "unattended.toml").write_text("limit_margin_s = 0\n")  # no 2-minute margin
    heard = tmp_path / "heard.txt"
    cmd = f'echo "$UNATTENDED_STATUS|$UNATTENDED_ITERATION|$UNATTENDED_REASON" >> {heard}'
    started = run_cli(["start", *FAST, "--notify-cmd", cmd], env, cwd=project)
    assert started.returncode == 0, started.stderr
    assert wait_terminal(project, timeout=90)["status"] == "done"
    lines = heard.read_text().splitlines()
    assert [line.split("|")[0] for line in lines] == ["waiting", "done"], lines
    assert "usage limit" in lines[0]
    titles = [argv[2] for argv in recorded(tools[1], "notify-send")]
    assert [t.split(" (")[0] for t in titles] == ["unattended: waiting", "unattended: done"]


def test_watchdog_pings_go_on_during_a_long_done_when(
    project: Path,
    fake_claude: FakeClaude,
    env: dict[str, str],
    notify_sock: NotifySocket,
    tmp_path: Path,
) -> None:
    """A test suite as --done-when longer than WatchdogSec must not get the daemon killed."""
    fake_claude.script([["commit", "text"]])
    pid_file = tmp_path / "done-when.pid"
    full_env = {**env, **notify_sock.env(watchdog_usec=400_000)}
    check = f"echo $$ > {shlex.quote(str(pid_file))}; exec sleep 30"
    proc = spawn_foreground(project, full_env, "--done-when", check)
    try:
        wait_ready(notify_sock, proc)
        assert wait_for(pid_file.exists, 30)
        notify_sock.drain()
        before = len(notify_sock.messages)
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            notify_sock.drain(timeout=0.2)
        during = [m for m in notify_sock.messages[before:] if m.get("WATCHDOG") == "1"]
        assert len(during) >= 3, notify_sock.messages[before:]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 6, (out, err)  # stopped: the signal ended --done-when too
    assert wait_gone([int(pid_file.read_text())], timeout=10) == []
