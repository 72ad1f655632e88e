"""The daemon's life with real processes: detach, readiness, singleton, crash, stop, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import pid_alive, read_state, run_cli, wait_for, wait_terminal
from unattended.contracts.paths import RunPaths

FAST = ["--grace-seconds", "2", "--allowed-tools", "Bash"]


def test_help_starts_nothing(project: Path, hermetic_env: dict[str, str]) -> None:
    for args in (["--help"], ["start", "--help"], ["stop", "--help"], ["status", "--help"]):
        proc = run_cli(args, hermetic_env, cwd=project)
        assert proc.returncode == 0, proc.stderr
        assert "Usage" in proc.stdout
    assert not (project / ".unattended").exists()


def test_unknown_option_and_bad_config_exit_2(project: Path, hermetic_env: dict[str, str]) -> None:
    proc = run_cli(["start", "--bogus"], hermetic_env, cwd=project)
    assert proc.returncode == 2
    assert "bogus" in proc.stderr

    (project / "unattended.toml").write_text("hours = 2\nmax_iteratons = 3\n")
    proc = run_cli(["start"], hermetic_env, cwd=project)
    assert proc.returncode == 2
    assert "max_iteratons" in proc.stderr
    assert "Traceback" not in proc.stderr

    (project / "unattended.toml").write_text("hours = -1\n")
    proc = run_cli(["start"], hermetic_env, cwd=project)
    assert proc.returncode == 2
    assert "hours" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (project / ".unattended" / "state.json").exists()


def test_no_prompt_and_not_a_repo(
    project: Path, hermetic_env: dict[str, str], tmp_path: Path
) -> None:
    (project / "PROMPT.md").unlink()
    proc = run_cli(["start", *FAST], hermetic_env, cwd=project)
    assert proc.returncode == 2
    assert "--prompt" in proc.stderr and "PROMPT.md" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1

    plain = tmp_path / "plain"
    plain.mkdir()
    proc = run_cli(["start", "--prompt", "x"], hermetic_env, cwd=plain)
    assert proc.returncode == 2
    assert "git" in proc.stderr and "Traceback" not in proc.stderr


def test_status_and_stop_when_never_ran(project: Path, hermetic_env: dict[str, str]) -> None:
    proc = run_cli(["status", "--json"], hermetic_env, cwd=project)
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert data["status"] == "none" and data["alive"] is False
    proc = run_cli(["stop"], hermetic_env, cwd=project)
    assert proc.returncode == 0 and "no active run" in proc.stdout


def test_detached_run_commits_and_reports_done(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit"], ["commit", "done"]])
    t0 = time.monotonic()
    proc = run_cli(["start", "--json", *FAST], hermetic_env, cwd=project)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert elapsed < 10
    state = wait_terminal(project)
    assert state["pid"] == info["pid"]
    assert state["status"] == "done" and state["exit_code"] == 0
    assert state["iteration"] == 2
    assert state["last_iteration"]["outcome"] == "done"
    assert state["cost_usd"] > 0 and state["input_tokens"] > 0
    assert not (project / ".unattended" / "supervisor.pid").exists()
    log = (project / ".unattended" / "run.log").read_text()
    assert "iter 1 progress" in log and "iter 2 done" in log
    assert "run ended done (exit 0)" in log
    calls = fake_claude.calls()
    assert [c["env"]["UNATTENDED_ITERATION"] for c in calls] == ["1", "2"]
    assert all("NOTIFY_SOCKET" not in c.get("env_names", []) for c in calls)
    assert (RunPaths(project).iterations / "0001.jsonl").stat().st_size > 0
    mode = (project / ".unattended").stat().st_mode & 0o777
    assert mode == 0o700
    assert "/.unattended/" in (project / ".git" / "info" / "exclude").read_text()
    status = json.loads(run_cli(["status", "--json"], hermetic_env, cwd=project).stdout)
    assert status["status"] == "done" and status["alive"] is False


def test_two_concurrent_starts_one_wins(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["hang"]])
    cmd = [sys.executable, "-m", "unattended", "start", *FAST]
    procs = [
        subprocess.Popen(
            cmd,
            cwd=project,
            env=hermetic_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(30), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    pid = read_state(project)["pid"]
    assert f"pid {pid}" in loser[2]
    # A third start, later, also refuses while the first runs.
    again = run_cli(["start", *FAST], hermetic_env, cwd=project)
    assert again.returncode == 2 and str(pid) in again.stderr
    assert (
        run_cli(
            ["stop", "--now", "--wait", "--timeout", "20"], hermetic_env, cwd=project
        ).returncode
        == 0
    )


def test_kill_9_then_status_crashed_and_resume(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit"], ["hang"]])
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    assert wait_for(
        lambda: (
            read_state(project)["iteration"] == 2 and read_state(project)["status"] == "running"
        ),
        30,
    )
    daemon = read_state(project)["pid"]
    worker = read_state(project)["worker_pid"]
    os.kill(daemon, signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(daemon), 10)
    status = json.loads(run_cli(["status", "--json"], hermetic_env, cwd=project).stdout)
    assert status["status"] == "crashed" and status["alive"] is False
    if worker and pid_alive(worker):
        os.kill(worker, signal.SIGKILL)
    fake_claude.script([["commit", "done"]])
    proc = run_cli(["start", "--resume", *FAST], hermetic_env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    state = wait_terminal(project)
    assert state["status"] == "done"
    assert state["iteration"] == 3  # the counter continued
    assert "resuming run" in (project / ".unattended" / "run.log").read_text()


def test_new_start_after_crash_archives_old_run(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["hang"]])
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    assert wait_for(lambda: read_state(project)["status"] == "running", 30)
    old = read_state(project)
    os.kill(old["pid"], signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(old["pid"]), 10)
    if old["worker_pid"]:
        psutil.Process(old["worker_pid"]).kill()
    fake_claude.script([["commit", "done"]])
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    state = wait_terminal(project)
    assert state["run_id"] != old["run_id"] and state["iteration"] == 1
    assert (RunPaths(project).runs / old["run_id"] / "state.json").exists()


def test_stop_sentinel_ends_after_current_iteration(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([[{"do": "sleep", "seconds": 2}, "commit"]])
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    assert wait_for(lambda: read_state(project)["status"] == "running", 30)
    (project / ".unattended" / "stop").touch()
    state = wait_terminal(project)
    assert state["status"] == "stopped" and state["exit_code"] == 6
    assert state["iteration"] == 1
    assert state["last_iteration"]["outcome"] == "progress"  # the worker was not interrupted
    assert not (project / ".unattended" / "stop").exists()


def test_stop_now_kills_stubborn_tree(
    project: Path, hermetic_env: dict[str, str], fake_claude, tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    fake_claude.script(
        [
            [
                "ignore_sigterm",
                "ignore_sigint",
                {"do": "grandchild", "pid_file": str(pid_file)},
                "hang",
            ]
        ]
    )
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    assert wait_for(pid_file.exists, 30)
    grandchild = int(pid_file.read_text())
    worker = read_state(project)["worker_pid"]
    t0 = time.monotonic()
    proc = run_cli(["stop", "--now", "--wait", "--timeout", "30"], hermetic_env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "stopped" in proc.stdout
    assert time.monotonic() - t0 < 2 + 2 + 3  # grace + 2 s, plus CLI start-up
    assert not pid_alive(worker) and not pid_alive(grandchild)
    state = read_state(project)
    assert state["status"] == "stopped" and state["worker_pid"] is None


def test_worker_timeout_kills_and_records(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["hang"]])
    proc = run_cli(
        ["start", "--worker-timeout", "2", "--max-iterations", "1", *FAST],
        hermetic_env,
        cwd=project,
    )
    assert proc.returncode == 0, proc.stderr
    state = wait_terminal(project)
    assert state["last_iteration"]["outcome"] == "timeout"
    assert state["status"] == "capped"


def test_markers_in_tool_output_do_not_count(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit", "markers_in_tool"]])
    proc = run_cli(
        ["start", "--foreground", "--max-iterations", "2", *FAST], hermetic_env, cwd=project
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["status"] == "capped" and state["last_iteration"]["outcome"] == "progress"


@pytest.mark.parametrize(
    ("final", "code", "status"),
    [("blocked", 4, "blocked"), ("done", 0, "done")],
)
def test_foreground_exit_codes(
    project: Path, hermetic_env: dict[str, str], fake_claude, final: str, code: int, status: str
) -> None:
    fake_claude.script([["commit", final]])
    proc = run_cli(["start", "--foreground", *FAST], hermetic_env, cwd=project)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert read_state(project)["status"] == status
    assert "run ended" in proc.stdout


def test_huge_output_keeps_daemon_memory_flat(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([[{"do": "spew", "mb": 150}, "commit", "done"]])
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    daemon = psutil.Process(read_state(project)["pid"])
    peak = 0
    while True:
        try:
            peak = max(peak, daemon.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        if not daemon.is_running() or daemon.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    state = wait_terminal(project, 120)
    assert state["status"] == "done"
    assert peak < 100 * 1024 * 1024, f"daemon peak RSS {peak / 2**20:.1f} MiB"
    size = (RunPaths(project).iterations / "0001.jsonl").stat().st_size
    assert size > 100 * 1024 * 1024  # below the 200 MB cap: everything kept


def test_final_notification_carries_the_report_summary(
    project: Path, hermetic_env: dict[str, str], fake_claude, tmp_path: Path
) -> None:
    out = tmp_path / "notified.txt"
    fake_claude.script([["commit", "done"]])
    fields = '"$UNATTENDED_STATUS" "$UNATTENDED_REASON" "$UNATTENDED_SUMMARY"'
    cmd = f'printf "%s|%s\\n%s" {fields} > {out}'
    proc = run_cli(["start", "--foreground", *FAST, "--notify-cmd", cmd], hermetic_env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("done|the worker reported UNATTENDED_DONE")
    assert text.splitlines()[1].startswith("project: done after 1 iteration(s)")
    assert "commit: fake:" in text  # the worker's commit subject, from git


def test_worker_deleting_the_state_dir_is_repaired(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script(
        [
            ["commit", "text"],
            [{"do": "run", "cmd": "git clean -fdx"}, {"do": "sleep", "seconds": 3}, "text"],
            ["commit", "done"],
        ]
    )
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    state = wait_terminal(project)
    assert state["status"] == "done" and state["iteration"] == 3
    paths = RunPaths(project)
    assert "was deleted" in paths.run_log.read_text()
    iterations = [
        json.loads(line)["iteration"] for line in paths.telemetry.read_text().splitlines()
    ]
    assert iterations == [1, 2, 3]  # the records in the git dir were never touched
    assert (paths.root.stat().st_mode & 0o777) == 0o700


def test_run_log_survives_rotation(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([[{"do": "sleep", "seconds": 2}, "commit", "text"], ["commit", "done"]])
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    log = project / ".unattended" / "run.log"
    assert wait_for(lambda: "worker started" in log.read_text(), 20)
    log.rename(log.with_name("run.log.1"))  # logrotate's default move-and-create
    state = wait_terminal(project)
    assert state["status"] == "done"
    assert "new run" in log.with_name("run.log.1").read_text()
    assert "run ended done" in log.read_text()


def test_a_new_runs_id_can_be_chosen_by_the_caller(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    """`start --run-id` (a Kubernetes Job's name, so its instance label names the run)."""
    bad = run_cli(["start", *FAST, "--run-id", "../x"], hermetic_env, cwd=project)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--run-id '../x'" in bad.stderr
    fake_claude.script([["commit", "done"]])
    proc = run_cli(
        ["start", "--foreground", *FAST, "--run-id", "unattended-widgets-4f63cf"],
        hermetic_env,
        cwd=project,
    )
    assert proc.returncode == 0, proc.stderr
    assert read_state(project)["run_id"] == "unattended-widgets-4f63cf"
