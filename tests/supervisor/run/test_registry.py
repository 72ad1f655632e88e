"""The per-user registry with real files and real processes standing in for daemons."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.conftest import run_cli
from tests.supervisor.run.conftest import dead_pid, make_state
from unattended.contracts.paths import RunPaths
from unattended.supervisor.cli.stop import stop_all
from unattended.supervisor.records.fsio import ensure_private_dir
from unattended.supervisor.records.state import write_state
from unattended.supervisor.run import registry

STARTED = "2026-11-23T03:12:09Z"


def _project(tmp_path: Path, name: str = "proj") -> Path:
    path = tmp_path / name
    ensure_private_dir(RunPaths(path).root)
    return path


def _create_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


def test_state_dir_honours_xdg(tmp_path: Path) -> None:
    assert registry.state_dir({"XDG_STATE_HOME": "/x/state", "HOME": "/h"}) == Path(
        "/x/state/unattended"
    )
    # Relative XDG paths are invalid by the spec and ignored.
    assert registry.state_dir({"XDG_STATE_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.local/state/unattended"
    )
    assert registry.state_dir({"HOME": "/h"}) == Path("/h/.local/state/unattended")


def test_register_writes_private_file_and_unregister_removes_it(
    tmp_path: Path, private_state_home: Path, sleeper: subprocess.Popen
) -> None:
    project = _project(tmp_path)
    ct = _create_time(sleeper.pid)
    registry.register(project, sleeper.pid, ct, "run-1", STARTED)
    path = private_state_home / "daemons" / f"{sleeper.pid}.json"
    data = json.loads(path.read_text())
    assert data == {
        "schema_version": 1,
        "project": str(project),
        "pid": sleeper.pid,
        "pid_create_time": ct,
        "run_id": "run-1",
        "started_at": STARTED,
    }
    assert path.stat().st_mode & 0o777 == 0o600
    assert (private_state_home / "daemons").stat().st_mode & 0o777 == 0o700
    assert list((private_state_home / "daemons").iterdir()) == [path]  # no temp file left
    registry.unregister(sleeper.pid)
    assert not path.exists()
    registry.unregister(sleeper.pid)  # idempotent


def test_live_daemon_row_comes_from_state_json(tmp_path: Path, sleeper: subprocess.Popen) -> None:
    project = _project(tmp_path)
    ct = _create_time(sleeper.pid)
    write_state(RunPaths(project), make_state(project, sleeper.pid, ct, iteration=7, cost_usd=2.5))
    registry.register(project, sleeper.pid, ct, "20261123T031209Z", STARTED)
    [row] = registry.list_runs()
    assert (row.status, row.alive, row.iteration, row.cost_usd) == ("running", True, 7, 2.5)
    assert row.ps_json() == {
        "project": str(project),
        "pid": sleeper.pid,
        "status": "running",
        "alive": True,
        "iteration": 7,
        "started_at": STARTED,
        "cost_usd": 2.5,
    }


def test_reused_pid_is_crashed(tmp_path: Path, sleeper: subprocess.Popen) -> None:
    """The registry names a live but unrelated process (another create time): crashed."""
    project = _project(tmp_path)
    stale_ct = _create_time(sleeper.pid) - 1000.0
    write_state(RunPaths(project), make_state(project, sleeper.pid, stale_ct))
    registry.register(project, sleeper.pid, stale_ct, "20261123T031209Z", STARTED)
    [row] = registry.list_runs()
    assert row.status == "crashed" and row.alive is False
    assert row.iteration == 3 and row.cost_usd == 1.25  # last known figures still shown
    # A crashed row stays listed (it needs a person's attention) ...
    assert [r.status for r in registry.list_runs()] == ["crashed"]


def test_dead_pid_is_crashed_until_a_new_daemon_registers(
    tmp_path: Path, private_state_home: Path, sleeper: subprocess.Popen
) -> None:
    project = _project(tmp_path)
    gone = dead_pid()
    write_state(RunPaths(project), make_state(project, gone, 1.0, status="waiting"))
    registry.register(project, gone, 1.0, "run-old", STARTED)
    assert [(r.pid, r.status) for r in registry.list_runs()] == [(gone, "crashed")]
    # ... until a new daemon registers for the same project: it supersedes the crashed one.
    ct = _create_time(sleeper.pid)
    write_state(RunPaths(project), make_state(project, sleeper.pid, ct, run_id="run-new"))
    registry.register(project, sleeper.pid, ct, "run-new", STARTED)
    assert [(r.pid, r.status) for r in registry.list_runs()] == [(sleeper.pid, "running")]
    assert not (private_state_home / "daemons" / f"{gone}.json").exists()


def test_leftovers_are_removed_not_listed(tmp_path: Path, private_state_home: Path) -> None:
    daemons = private_state_home / "daemons"
    # 1. The run ended normally; only the unregister step was lost.
    ended = _project(tmp_path, "ended")
    pid1 = dead_pid()
    write_state(RunPaths(ended), make_state(ended, pid1, 1.0, status="done", exit_code=0))
    registry.register(ended, pid1, 1.0, "r1", STARTED)
    # 2. A newer run (another daemon) owns the project now.
    newer = _project(tmp_path, "newer")
    pid2 = dead_pid()
    write_state(RunPaths(newer), make_state(newer, 999_999, None))
    registry.register(newer, pid2, 1.0, "r2", STARTED)
    # 3. The project directory is gone.
    pid3 = dead_pid()
    registry.register(tmp_path / "deleted", pid3, 1.0, "r3", STARTED)
    assert len(list(daemons.glob("*.json"))) == 3
    assert registry.list_runs() == []
    assert list(daemons.glob("*.json")) == []


def test_unreadable_state_of_live_daemon_is_unknown(
    tmp_path: Path, sleeper: subprocess.Popen
) -> None:
    project = _project(tmp_path)
    ct = _create_time(sleeper.pid)
    RunPaths(project).state.write_text("{not json")
    registry.register(project, sleeper.pid, ct, "r", STARTED)
    [row] = registry.list_runs()
    assert (row.status, row.alive, row.iteration, row.cost_usd) == ("unknown", True, None, None)
    assert "not valid JSON" in (row.note or "")
    RunPaths(project).state.unlink()
    assert registry.list_runs()[0].status == "unknown"
    # A dead daemon whose state cannot be read is still reported as crashed.
    gone = dead_pid()
    other = _project(tmp_path, "other")
    registry.register(other, gone, 1.0, "r", STARTED)
    assert {(r.pid, r.status) for r in registry.list_runs()} == {
        (sleeper.pid, "unknown"),
        (gone, "crashed"),
    }


def test_corrupt_registry_file_is_reported_and_skipped(
    tmp_path: Path, private_state_home: Path, sleeper: subprocess.Popen
) -> None:
    project = _project(tmp_path)
    ct = _create_time(sleeper.pid)
    write_state(RunPaths(project), make_state(project, sleeper.pid, ct))
    registry.register(project, sleeper.pid, ct, "r", STARTED)
    (private_state_home / "daemons" / "12.json").write_text('{"schema_version": 9}')
    rows, problems = registry.scan()
    assert [r.pid for r in rows] == [sleeper.pid]
    assert len(problems) == 1 and "schema_version 9" in problems[0]


def test_ps_cli_json_and_table(
    tmp_path: Path, hermetic_env: dict[str, str], sleeper: subprocess.Popen
) -> None:
    proc = run_cli(["ps", "--json"], hermetic_env)
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    assert run_cli(["ps"], hermetic_env).stdout.strip() == "no runs"

    project = _project(tmp_path)
    ct = _create_time(sleeper.pid)
    write_state(RunPaths(project), make_state(project, sleeper.pid, ct))
    registry.register(project, sleeper.pid, ct, "r", STARTED)
    proc = run_cli(["ps", "--json"], hermetic_env)
    assert proc.returncode == 0, proc.stderr
    [obj] = json.loads(proc.stdout)
    assert list(obj) == ["project", "pid", "status", "alive", "iteration", "started_at", "cost_usd"]
    assert obj["status"] == "running" and obj["pid"] == sleeper.pid

    proc = run_cli(["ps"], hermetic_env)
    assert proc.returncode == 0, proc.stderr
    header, line = proc.stdout.splitlines()[:2]
    assert header.split() == ["PROJECT", "PID", "STATUS", "ITER", "ELAPSED", "COST"]
    assert str(sleeper.pid) in line and "running" in line and "3/200" in line
    assert "$1.25" in line


def test_stop_all_with_no_runs(hermetic_env: dict[str, str]) -> None:
    proc = run_cli(["stop", "--all"], hermetic_env)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "no active runs"


@pytest.mark.parametrize("name", ["x.json.123.tmp", ".7.json.55.tmp"])
def test_temp_files_are_not_entries(private_state_home: Path, name: str) -> None:
    ensure_private_dir(private_state_home / "daemons")
    (private_state_home / "daemons" / name).write_text("{")
    assert registry.scan() == ([], [])


def test_stop_all_goes_on_past_an_unreadable_state(
    tmp_path: Path, sleeper: subprocess.Popen, capsys: pytest.CaptureFixture[str]
) -> None:
    """One run's state.json is garbage: it is reported (exit 2), the other run still stops."""
    other = subprocess.Popen(["sleep", "120"])
    try:
        good, bad = _project(tmp_path, "good"), _project(tmp_path, "bad")
        ct = _create_time(sleeper.pid)
        write_state(RunPaths(good), make_state(good, sleeper.pid, ct))
        registry.register(good, sleeper.pid, ct, "r1", STARTED)
        RunPaths(bad).state.write_text("{garbage")
        registry.register(bad, other.pid, _create_time(other.pid), "r2", "2026-11-23T02:00:00Z")
        assert stop_all(now=False, wait=False, timeout=None) == 2
        assert RunPaths(good).stop.exists()
        out, err = capsys.readouterr()
        assert f"{good} (pid {sleeper.pid}): stop requested" in out
        assert "not valid JSON" in err
    finally:
        other.kill()
        other.wait()
