"""Notifications through real (fake) notify-send / osascript and a real shell notify command."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.platform_adapters.fake_tools import gone, path_with, recorded, recording_tool
from unattended.platform_adapters import notify as notify_mod
from unattended.platform_adapters.notify import NotifyEvent, notify


@pytest.fixture(autouse=True)
def _fresh_once_memory() -> Iterator[None]:
    """ "Logged once" is per process: each test starts with a clean memory."""
    notify_mod._said.clear()
    yield
    notify_mod._said.clear()


def event(tmp_path: Path, status: str = "blocked") -> NotifyEvent:
    project = tmp_path / "my proj ü"
    project.mkdir(exist_ok=True)
    return NotifyEvent(
        status=status,
        reason="needs a human: 'API key' $HOME `x`",
        project=str(project),
        iteration=7,
        cost_usd=1.23456,
    )


class Log(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


def test_notify_send_argv(tmp_path: Path) -> None:
    bin_dir, rec = tmp_path / "bin", tmp_path / "rec"
    recording_tool(bin_dir, "notify-send", rec)
    log = Log()
    ev = event(tmp_path)
    notify(ev, None, log, platform="linux", environ={"PATH": path_with(bin_dir)})
    assert log == []
    assert recorded(rec, "notify-send") == [
        [
            "--app-name=unattended",
            "--urgency=critical",
            "unattended: blocked (my proj ü)",
            "needs a human: 'API key' $HOME `x` (iteration 7, $1.23)",
        ]
    ]
    notify(event(tmp_path, "done"), None, log, platform="linux", environ={"PATH": str(bin_dir)})
    assert recorded(rec, "notify-send")[1][1] == "--urgency=normal"


def test_osascript_argv_passes_text_as_arguments(tmp_path: Path) -> None:
    """Title and body are run arguments, never spliced into AppleScript source."""
    bin_dir, rec = tmp_path / "bin", tmp_path / "rec"
    recording_tool(bin_dir, "osascript", rec)
    log = Log()
    notify(event(tmp_path), None, log, platform="darwin", environ={"PATH": path_with(bin_dir)})
    assert log == []
    (argv,) = recorded(rec, "osascript")
    assert argv[-2:] == [
        "unattended: blocked (my proj ü)",
        "needs a human: 'API key' $HOME `x` (iteration 7, $1.23)",
    ]
    script = argv[:-2]
    assert script[0::2] == ["-e"] * 3
    assert script[1] == "on run argv" and script[-1] == "end run"
    assert "item 2 of argv" in script[3] and "needs a human" not in " ".join(script)


def test_notify_cmd_gets_the_variables_and_no_service_env(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    log = Log()
    environ = {
        "PATH": "/usr/bin:/bin",
        "NOTIFY_SOCKET": "/run/x",
        "WATCHDOG_USEC": "1",
        "WATCHDOG_PID": "1",
        "KEEP_ME": "yes",
    }
    cmd = f"env > {shlex.quote(str(out))}; pwd >> {shlex.quote(str(out))}"
    ev = event(tmp_path)
    notify(ev, cmd, log, platform="linux", environ=environ)
    lines = out.read_text(encoding="utf-8").splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert env["UNATTENDED_STATUS"] == "blocked"
    assert env["UNATTENDED_REASON"] == ev.reason
    assert env["UNATTENDED_PROJECT"] == ev.project
    assert env["UNATTENDED_ITERATION"] == "7"
    assert env["UNATTENDED_COST_USD"] == "1.2346"
    assert env["KEEP_ME"] == "yes"
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} & env.keys()
    assert lines[-1] == ev.project  # runs in the project
    # No desktop notifier on that PATH: said once, never again.
    assert log == ["no desktop notification: notify-send not found on PATH"]
    notify(ev, cmd, log, platform="linux", environ=environ)
    assert len(log) == 1


def test_failing_notifiers_are_logged_not_raised(tmp_path: Path) -> None:
    bin_dir, rec = tmp_path / "bin", tmp_path / "rec"
    recording_tool(bin_dir, "notify-send", rec, then="echo 'no session bus' >&2; exit 1")
    log = Log()
    env = {"PATH": path_with(bin_dir)}
    notify(event(tmp_path), "echo 'webhook down' >&2; exit 3", log, platform="linux", environ=env)
    assert "notification: notify command failed with exit code 3: webhook down" in log
    assert "notification: notify-send failed with exit code 1: no session bus" in log
    notify(event(tmp_path), "exit 3", log, platform="linux", environ=env)
    # The user's command is reported every time; the desktop's same answer only once.
    assert len([m for m in log if "notify-send failed" in m]) == 1
    assert len([m for m in log if "notify command failed" in m]) == 2
    assert len(recorded(rec, "notify-send")) == 2


def test_hanging_notify_cmd_is_killed_at_the_deadline(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    cmd = f"sleep 60 & echo $! > {shlex.quote(str(pid_file))}; wait"
    log = Log()
    began = time.monotonic()
    notify(
        event(tmp_path),
        cmd,
        log,
        platform="linux",
        environ={"PATH": "/usr/bin:/bin"},
        timeout_s=0.5,
    )
    assert time.monotonic() - began < 10
    assert any("notify command killed after 0.5s" in m for m in log), log
    assert gone(int(pid_file.read_text()))  # the shell's child too: the whole group


def test_notify_cmd_that_cannot_start_and_bad_input_never_raise(tmp_path: Path) -> None:
    log = Log()
    ev = NotifyEvent("failed", "x", str(tmp_path / "missing"), 1, 0.0)
    notify(ev, "true", log, platform="linux", environ={"PATH": str(tmp_path)})
    # /bin/sh is absolute in subprocess, so the command runs; the desktop tool is missing.
    assert log == ["no desktop notification: notify-send not found on PATH"]
    notify(ev, "   ", log, platform="plan9", environ={})
    assert log[-1] == "no desktop notification: no desktop notifications on platform 'plan9'"


def test_processes_a_notify_cmd_detaches_are_ended_with_it(tmp_path: Path) -> None:
    """`--notify-cmd` that leaves a daemon in a session of its own, then exits 0 (or hangs):
    nothing it started outlives the notification."""
    quick, slow = tmp_path / "quick.pid", tmp_path / "slow.pid"
    for pid_file, tail in ((quick, "exit 0"), (slow, "sleep 60")):
        cmd = f"setsid sleep 60 >/dev/null 2>&1 & echo $! > {shlex.quote(str(pid_file))}; {tail}"
        log = Log()
        notify(
            event(tmp_path), cmd, log, platform="linux",
            environ={"PATH": "/usr/bin:/bin"}, timeout_s=1.0,
        )  # fmt: skip
        assert gone(int(pid_file.read_text())), f"{tail}: the detached sleep outlived it"


def test_a_quick_desktop_notifier_never_ends_the_notify_cmd_beside_it(tmp_path: Path) -> None:
    """In the daemon (a subreaper), the desktop notifier finished first and its clean-up took
    the notify command, started a moment later as our child too, for something it detached:
    `--notify-cmd` died with -9 before writing anything."""
    bin_dir = tmp_path / "bin"
    recording_tool(bin_dir, "notify-send", tmp_path / "rec")  # exits at once
    out = tmp_path / "notified.txt"
    script = f"""
import sys
from pathlib import Path
from unattended.platform_adapters import proctree
from unattended.platform_adapters.notify import NotifyEvent, notify

assert proctree.become_subreaper()
event = NotifyEvent(status="done", reason="r", project={str(tmp_path)!r}, iteration=1,
                    cost_usd=0.0, summary="s")
log = []
notify(event, "sleep 0.5; echo $UNATTENDED_STATUS > {out}", log.append, platform="linux",
       environ={{"PATH": {str(bin_dir)!r} + ":/usr/bin:/bin"}}, timeout_s=10)
print(log)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout  # no "failed with exit code -9"
    assert out.read_text() == "done\n"
