"""A process's start time read from /proc agrees with psutil's, which `pid_is_alive` compares."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from unattended.supervisor.records.liveness import (
    _proc_create_time,
    pid_is_alive,
    process_create_time,
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_the_proc_start_time_is_psutil_s_for_us_and_for_a_child() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        for pid in (os.getpid(), child.pid):
            ours = _proc_create_time(pid)
            assert ours is not None
            assert abs(ours - psutil.Process(pid).create_time()) < 0.005
            assert pid_is_alive(pid, process_create_time(pid))
    finally:
        child.kill()
        child.wait()
    assert process_create_time(child.pid) is None  # reaped: no such process
