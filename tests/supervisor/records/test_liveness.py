"""Telling the daemon from a dead pid, a zombie, a reused pid and another user's process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from unattended.supervisor.records.liveness import pid_is_alive


def test_live_process_with_its_create_time_is_alive() -> None:
    me = psutil.Process()
    assert pid_is_alive(me.pid, me.create_time())
    assert pid_is_alive(me.pid, None)


def test_reused_pid_is_dead() -> None:
    me = psutil.Process()
    assert not pid_is_alive(me.pid, me.create_time() - 1000)


def test_exited_and_zombie_processes_are_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    created = psutil.Process(child.pid).create_time()
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not pid_is_alive(child.pid, created)  # a zombie: exited, not yet reaped
    child.wait()
    assert not pid_is_alive(child.pid, created)


def test_another_users_process_counts_as_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where /proc hides other users' processes (EPERM), the daemon is not declared dead."""

    class Hidden:
        def __init__(self, pid: int) -> None:
            raise psutil.AccessDenied(pid)

    monkeypatch.setattr(psutil, "Process", Hidden)
    assert pid_is_alive(os.getpid(), 12345.0)
