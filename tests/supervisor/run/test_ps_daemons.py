"""`ps` and `stop --all` against real daemons in three temp repos, one of them killed with -9."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

from tests.conftest import pid_alive, read_state, run_cli, wait_for

FAST = ["--grace-seconds", "2", "--allowed-tools", "Bash"]
SLEEPY = [[{"do": "sleep", "seconds": 30}, "text"]]


def _start_running(repo: Path, env: dict[str, str]) -> dict:
    proc = run_cli(["start", *FAST], env, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert wait_for(lambda: read_state(repo)["status"] == "running", 30), read_state(repo)
    return read_state(repo)


def _registry_file(state_home: Path, pid: int) -> Path:
    return state_home / "daemons" / f"{pid}.json"


def _registered(repo: Path, state_home: Path) -> dict:
    """The daemon lists itself in the per-user registry once it is ready."""
    state = read_state(repo)
    assert wait_for(lambda: _registry_file(state_home, state["pid"]).exists(), 5)
    return state


def _ps(env: dict[str, str]) -> list[dict]:
    proc = run_cli(["ps", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_ps_two_running_one_crashed_then_stop_all(
    repos: list[Path], hermetic_env: dict[str, str], fake_claude, private_state_home: Path
) -> None:
    fake_claude.script(SLEEPY)
    states = []
    for repo in repos:
        _start_running(repo, hermetic_env)
        states.append(_registered(repo, private_state_home))
    victim = states[2]
    os.kill(victim["pid"], signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(victim["pid"]), 10)
    if victim["worker_pid"] and pid_alive(victim["worker_pid"]):
        os.kill(victim["worker_pid"], signal.SIGKILL)

    rows = {row["project"]: row for row in _ps(hermetic_env)}
    assert set(rows) == {str(r) for r in repos}
    for repo, state in zip(repos[:2], states[:2], strict=True):
        row = rows[str(repo)]
        assert (row["status"], row["alive"], row["pid"]) == ("running", True, state["pid"])
        assert row["iteration"] == 1 and row["started_at"] == state["started_at"]
        assert row["cost_usd"] == 0
    crashed = rows[str(repos[2])]
    assert (crashed["status"], crashed["alive"]) == ("crashed", False)
    assert crashed["pid"] == victim["pid"]

    table = run_cli(["ps"], hermetic_env).stdout
    statuses = re.findall(r"\b(running|crashed)\b", table)  # not "_running_" in tmp paths
    assert sorted(statuses) == ["crashed", "running", "running"], table

    # Plain stop --all: a sentinel in each live project, nothing for the crashed one.
    proc = run_cli(["stop", "--all"], hermetic_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and all("stop requested" in line for line in lines), lines
    assert all((r / ".unattended" / "stop").exists() for r in repos[:2])
    assert not (repos[2] / ".unattended" / "stop").exists()

    # --now --wait: both daemons end, each with one line and its final status.
    proc = run_cli(["stop", "--all", "--now", "--wait", "--timeout", "30"], hermetic_env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for state in states[:2]:
        assert f"(pid {state['pid']}): stopping now" in out
        assert f"(pid {state['pid']}): final status stopped" in out
    for repo, state in zip(repos[:2], states[:2], strict=True):
        assert not pid_alive(state["pid"])
        assert read_state(repo)["status"] == "stopped"

    # Only the crashed run is left; a second stop --all finds nothing to stop.
    assert [(r["pid"], r["status"]) for r in _ps(hermetic_env)] == [(victim["pid"], "crashed")]
    proc = run_cli(["stop", "--all"], hermetic_env)
    assert proc.returncode == 0 and proc.stdout.strip() == "no active runs"


def test_stop_all_wait_timeout_exits_1(
    repos: list[Path], hermetic_env: dict[str, str], fake_claude, private_state_home: Path
) -> None:
    """A plain stop waits for the 30 s iteration: --wait --timeout 1 gives up with exit 1."""
    fake_claude.script(SLEEPY)
    state = _start_running(repos[0], hermetic_env)
    _registered(repos[0], private_state_home)
    proc = run_cli(["stop", "--all", "--wait", "--timeout", "1"], hermetic_env)
    assert proc.returncode == 1
    assert f"pid {state['pid']}) is still running after 1s" in proc.stderr
    assert pid_alive(state["pid"])
    proc = run_cli(["stop", "--all", "--now", "--wait", "--timeout", "30"], hermetic_env)
    assert proc.returncode == 0, proc.stderr


def test_daemon_registers_itself_and_unregisters_on_exit(
    project: Path, hermetic_env: dict[str, str], fake_claude, private_state_home: Path
) -> None:
    fake_claude.script(SLEEPY)
    state = _start_running(project, hermetic_env)
    path = _registry_file(private_state_home, state["pid"])
    assert wait_for(path.exists, 5)
    entry = json.loads(path.read_text())
    assert entry["project"] == str(project) and entry["run_id"] == state["run_id"]
    assert entry["pid_create_time"] == state["pid_create_time"]
    proc = run_cli(["stop", "--now", "--wait", "--timeout", "30"], hermetic_env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert not path.exists()
