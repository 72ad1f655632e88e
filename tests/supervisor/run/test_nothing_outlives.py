"""Nothing of a run outlives it, with the real daemon, the fake claude and real processes: an
internal error, a lost terminal, a kill -9, a forged state.json, a slow --done-when."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import pid_alive, read_state, run_cli, wait_for
from tests.supervisor.run.conftest import dead_pid, make_state
from unattended.contracts.paths import RunPaths

FAST = ["--grace-seconds", "1", "--allowed-tools", "Bash,Write"]
FAULTY = Path(__file__).with_name("faulty_daemon.py")


@pytest.fixture(autouse=True)
def no_leftovers(tmp_path: Path):  # noqa: ANN201
    """Whatever a failing test leaves running in its temp dir is killed at teardown."""
    yield
    for proc in psutil.process_iter():
        try:
            if proc.cwd().startswith(str(tmp_path)) and proc.pid != os.getpid():
                proc.kill()
        except (psutil.Error, OSError):
            continue


def run_log(project: Path) -> str:
    path = project / ".unattended" / "run.log"
    return path.read_text() if path.exists() else ""


def worker_pids(fake_claude) -> list[int]:  # noqa: ANN001
    return [call["pid"] for call in fake_claude.calls()]


def test_an_internal_error_ends_the_workers_whole_tree(
    project: Path, hermetic_env: dict[str, str], fake_claude, tmp_path: Path
) -> None:
    pid_file = tmp_path / "tool.pid"
    fake_claude.script([[{"do": "grandchild", "pid_file": str(pid_file)}, "hang"]])
    done = subprocess.run(
        [sys.executable, str(FAULTY), "tick", str(pid_file), *FAST, "--max-iterations", "1"],
        env=hermetic_env, cwd=project, capture_output=True, text=True, timeout=90,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    log = run_log(project)
    assert "internal error: RuntimeError('injected fault')" in log
    tool = int(pid_file.read_text())
    (worker,) = worker_pids(fake_claude)
    assert wait_for(lambda: not pid_alive(worker) and not pid_alive(tool), 10), log
    assert "ended the run's remaining processes on exit" in log


def test_foreground_survives_sighup_and_a_lost_terminal(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([[{"do": "sleep", "seconds": 1.5}, "commit"]])
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "unattended", "start", "--foreground", *FAST,
         "--max-iterations", "3"],
        env=hermetic_env, cwd=project, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
        start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    try:
        seen = b""
        while b"worker started" not in seen:
            seen += os.read(master, 4096)
        os.kill(proc.pid, signal.SIGHUP)  # the terminal closes: SIGHUP, then EIO on writes
        os.close(master)
        master = -1
        code = proc.wait(timeout=90)
    finally:
        if master >= 0:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = run_log(project)
    assert code == 3, log  # capped by iterations: the run went on to its own end
    assert "the terminal went away" in log
    assert read_state(project)["iteration"] == 3


def test_after_kill_9_status_names_the_orphans_and_start_ends_them(
    project: Path, hermetic_env: dict[str, str], fake_claude, tmp_path: Path
) -> None:
    pid_file = tmp_path / "tool.pid"
    fake_claude.script([[{"do": "grandchild", "pid_file": str(pid_file)}, "hang"], ["done"]])
    started = run_cli(["start", *FAST], hermetic_env, cwd=project)
    assert started.returncode == 0, started.stdout + started.stderr
    assert wait_for(pid_file.exists, 30), run_log(project)
    tool = int(pid_file.read_text())

    def recorded() -> bool:
        listed = {d["pid"] for d in read_state(project).get("descendants", [])}
        return tool in listed

    assert wait_for(recorded, 10), read_state(project)
    state = read_state(project)
    os.kill(state["pid"], signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(state["pid"]), 10)
    (worker,) = worker_pids(fake_claude)
    assert pid_alive(worker) and pid_alive(tool)  # orphans of the crashed run

    shown = run_cli(["status"], hermetic_env, cwd=project)
    assert "orphans" in shown.stdout and str(tool) in shown.stdout, shown.stdout
    as_json = json.loads(run_cli(["status", "--json"], hermetic_env, cwd=project).stdout)
    assert tool in as_json["orphans"] and worker in as_json["orphans"]

    again = run_cli(["start", "--foreground", *FAST], hermetic_env, cwd=project, timeout=90)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not pid_alive(worker) and not pid_alive(tool)
    assert f"ended its processes still running (pid {worker}" in run_log(project)


def test_done_when_keeps_the_tick_going_and_a_stop_ends_it(
    project: Path, hermetic_env: dict[str, str], fake_claude, tmp_path: Path
) -> None:
    pid_file = tmp_path / "done-when.pid"
    fake_claude.script([["commit", "text"]])
    started = run_cli(
        ["start", *FAST, "--done-when", f"echo $$ > {pid_file}; exec sleep 300"],
        hermetic_env, cwd=project,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    assert wait_for(pid_file.exists, 30), run_log(project)
    checker = int(pid_file.read_text())
    state = read_state(project)
    before = state["updated_at"]
    (project / ".unattended" / "control.json").write_bytes(b"\xff")
    # The tick runs while --done-when does: it answers the control file.
    assert wait_for(lambda: "ignored an unreadable control request" in run_log(project), 15)
    os.kill(state["pid"], signal.SIGTERM)
    assert wait_for(lambda: not pid_alive(state["pid"]), 30), run_log(project)
    assert not pid_alive(checker)
    final = read_state(project)
    assert final["status"] == "stopped" and final["updated_at"] >= before


def test_a_forged_state_never_gets_an_unrelated_process_killed(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    """state.json naming a real unrelated `sleep` (with its real start time) as the daemon,
    the worker and a descendant: neither `stop --now` nor `start --resume` may touch it."""
    sleep = subprocess.Popen(["sleep", "300"], env={"PATH": os.environ["PATH"]})
    try:
        created = psutil.Process(sleep.pid).create_time()
        paths = RunPaths(project)
        paths.records.mkdir(mode=0o700, parents=True, exist_ok=True)
        forged = make_state(
            project, sleep.pid, created, worker_pid=sleep.pid,
            worker_started_at=created, descendants=[{"pid": sleep.pid, "create_time": created}],
        )  # fmt: skip
        paths.state.write_text(forged.model_dump_json())
        stop = run_cli(["stop", "--now"], hermetic_env, cwd=project)
        assert stop.returncode == 1 and "not signalling" in stop.stderr, stop.stdout + stop.stderr
        time.sleep(0.2)
        assert sleep.poll() is None, "stop --now signalled an unrelated process"

        forged = forged.model_copy(update={"pid": dead_pid(), "pid_create_time": 1.0})
        paths.state.write_text(forged.model_dump_json())
        fake_claude.script([["done"]])
        resumed = run_cli(["start", "--resume", "--foreground", *FAST], hermetic_env,
                          cwd=project, timeout=90)  # fmt: skip
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert sleep.poll() is None, "--resume killed an unrelated process"
    finally:
        sleep.kill()
        sleep.wait()


def test_only_a_process_with_the_runs_marker_and_start_time_is_ours() -> None:
    """proctree.is_ours on real `sleep`s: our marker and the recorded start time, both."""
    from unattended.platform_adapters import proctree

    env = {"PATH": os.environ["PATH"]}
    ours = subprocess.Popen(["sleep", "60"], env={**env, "UNATTENDED_RUN_ID": "run-1"})
    other = subprocess.Popen(["sleep", "60"], env=env)
    try:
        t_ours = psutil.Process(ours.pid).create_time()
        t_other = psutil.Process(other.pid).create_time()
        assert proctree.is_ours(ours.pid, t_ours, "run-1")
        assert not proctree.is_ours(ours.pid, t_ours, "run-2")  # another run's
        assert not proctree.is_ours(ours.pid, t_ours + 5, "run-1")  # a reused pid
        assert not proctree.is_ours(other.pid, t_other, "run-1")  # no marker: not ours
        assert proctree.end_recorded([(other.pid, t_other)], "run-1") == []
        assert other.poll() is None
        assert proctree.end_recorded([(ours.pid, t_ours)], "run-1") == [ours.pid]
        assert not pid_alive(ours.pid)  # killed (and reaped: it was our child)
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()


def test_a_done_when_orphaned_by_kill_9_is_ended_by_the_next_start(
    project: Path, hermetic_env: dict[str, str], fake_claude, tmp_path: Path
) -> None:
    pid_file = tmp_path / "done-when.pid"
    fake_claude.script([["commit", "text"]])
    check = f"echo $$ > {pid_file}; exec sleep 300"
    started = run_cli(["start", *FAST, "--done-when", check], hermetic_env, cwd=project)
    assert started.returncode == 0, started.stdout + started.stderr
    assert wait_for(pid_file.exists, 30), run_log(project)
    checker = int(pid_file.read_text())

    def recorded() -> bool:
        return checker in {d["pid"] for d in read_state(project).get("descendants", [])}

    assert wait_for(recorded, 10), read_state(project)
    daemon = read_state(project)["pid"]
    os.kill(daemon, signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(daemon), 10)
    assert pid_alive(checker)
    fake_claude.script([["done"]])
    again = run_cli(["start", "--foreground", *FAST], hermetic_env, cwd=project, timeout=90)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not pid_alive(checker)
