"""Work preservation with real processes: a worker that wipes uncommitted work costs one iteration.

The worker runs `git reset --hard` and `git clean -fdx` on the previous iteration's uncommitted
files (and on an ignored `.env`); the daemon's before/after snapshots must let
`unattended recover` bring every file back onto a new branch, without touching the user's
branch, index or work tree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, kill_tree, pid_alive, read_state, run_cli, wait_for
from tests.e2e.daemon.scenario import (
    FAST,
    branch,
    detached,
    foreground,
    head,
    run_log,
    write_toml,
)
from unattended.contracts.paths import RunPaths

WIPE = "git reset --hard -q && git clean -fdxq"


def test_reset_and_clean_lose_nothing(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    (project / ".gitignore").write_text(".env\n")
    git(project, "add", ".gitignore", env=hermetic_env)
    git(project, "commit", "-q", "-m", "ignore .env", env=hermetic_env)
    (project / ".env").write_text("API_TOKEN=s3cret\n")
    write_toml(project, snapshot_ignored=[".env"])  # opt in: snapshots hold no ignored file else
    user_head = head(project)
    fake_claude.script(
        [
            # iteration 1: uncommitted work only (a changed tracked file, new files)
            [
                {"do": "write", "file": "README.md", "content": "hello, edited\n"},
                {"do": "write", "file": "src/feature.py", "content": "VALUE = 42\n"},
                {"do": "write", "file": "notes/plan.md", "content": "1. build\n"},
                "text",
            ],
            # iteration 2: wipes it all, including the ignored .env and .unattended/
            [{"do": "run", "cmd": WIPE}, "done"],
        ]
    )
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The worker really destroyed the work.
    assert not (project / ".env").exists()
    assert not (project / "src").exists()
    assert (project / "README.md").read_text() == "hello\n"
    state = read_state(project)  # the daemon rewrote its state after the wipe
    assert state["status"] == "done" and state["iteration"] == 2
    assert ".unattended/ was deleted" in run_log(project)
    run_id = state["run_id"]

    listing = run_cli(["recover", "--list"], hermetic_env, cwd=project)
    assert listing.returncode == 0, listing.stderr
    for leaf in ("0001-before", "0001-after", "0002-before", "0002-after"):
        assert f"{run_id}/{leaf}" in listing.stdout, listing.stdout

    ref = f"{run_id}/0002-before"
    restored = run_cli(
        ["recover", "--restore", ref, "--to-branch", "rescued", "--with-ignored"],
        hermetic_env,
        cwd=project,
    )
    assert restored.returncode == 0, restored.stderr
    assert "git switch rescued" in restored.stdout
    # Created, not checked out; the user's branch did not move.
    assert branch(project) == "work" and head(project) == user_head
    assert git(project, "rev-parse", "--verify", "rescued") != user_head
    assert git(project, "show", "rescued:README.md") == "hello, edited"
    assert git(project, "show", "rescued:src/feature.py") == "VALUE = 42"
    assert git(project, "show", "rescued:notes/plan.md") == "1. build"
    # The secret is never committed to the branch, but --with-ignored writes it back.
    files = git(project, "ls-tree", "-r", "--name-only", "rescued").splitlines()
    assert ".env" not in files
    assert (project / ".env").read_text() == "API_TOKEN=s3cret\n"
    assert git(project, "stash", "list") == ""


def test_restore_without_ignored_holds_secrets_back(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    (project / ".env.local").write_text("DB=postgres://x\n")  # untracked: not ignored yet
    (project / ".gitignore").write_text(".env*\n")
    git(project, "add", ".gitignore", env=hermetic_env)
    git(project, "commit", "-q", "-m", "ignore env", env=hermetic_env)
    write_toml(project, snapshot_ignored=[".env", ".env.*"])  # opted in
    fake_claude.script([[{"do": "run", "cmd": WIPE}, "done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (project / ".env.local").exists()
    run_id = read_state(project)["run_id"]
    restored = run_cli(
        ["recover", "--restore", f"{run_id}/0001-before", "--to-branch", "night"],
        hermetic_env,
        cwd=project,
    )
    assert restored.returncode == 0, restored.stderr
    assert ".env.local" in restored.stdout and "--with-ignored" in restored.stdout
    assert not (project / ".env.local").exists()  # held back
    # An existing branch is never overwritten.
    again = run_cli(
        ["recover", "--restore", f"{run_id}/0001-before", "--to-branch", "night"],
        hermetic_env,
        cwd=project,
    )
    assert again.returncode == 2 and "night" in again.stderr


# ----- crash recovery ---------------------------------------------------------------------------


def _kill_daemon_mid_iteration(project: Path) -> dict:
    """SIGKILL the daemon while worker 2 runs; returns the state it left behind.

    Waits for the worker's first output line: a worker still starting up would die of EPIPE on
    its first write once the daemon is gone (so would the real CLI), and this test wants one
    that survives the daemon.
    """
    out = RunPaths(project).iterations / "0002.jsonl"
    assert wait_for(
        lambda: (
            read_state(project)["iteration"] == 2
            and read_state(project)["status"] == "running"
            and out.exists()
            and out.stat().st_size > 0
        ),
        30,
    ), run_log(project)
    state = read_state(project)
    os.kill(state["pid"], signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(state["pid"]), 10)
    return state


def test_kill_9_then_resume_continues_counter_deadline_totals(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit"], ["hang"]])
    detached(project, hermetic_env, "--max-iterations", "4", "--hours", "2")
    old = _kill_daemon_mid_iteration(project)
    assert old["cost_usd"] > 0 and old["input_tokens"] > 0
    status = json.loads(run_cli(["status", "--json"], hermetic_env, cwd=project).stdout)
    assert status["status"] == "crashed"

    fake_claude.script([["commit"]])
    # A service unit passes the same bare options every time: the saved caps must hold.
    proc = foreground(project, hermetic_env, "--resume")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["run_id"] == old["run_id"] and state["resumed_count"] == 1
    assert state["deadline"] == old["deadline"] and state["started_at"] == old["started_at"]
    assert state["iteration"] == 4, state  # 3 and 4 after the crash: the counter went on
    assert state["stop_reason"].startswith("iteration cap: 4 of 4")
    assert state["cost_usd"] > old["cost_usd"]
    assert state["input_tokens"] > old["input_tokens"]
    log = run_log(project)
    assert f"resuming run {old['run_id']} after a crash: iteration counter 2" in log
    assert "iter 3 progress" in log and "iter 4 progress" in log
    # The crashed run's worker does not keep working next to the new ones.
    assert not pid_alive(old["worker_pid"])
    assert f"ended its processes still running (pid {old['worker_pid']}" in log


def test_resume_with_nothing_to_resume_is_refused(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit", "done"]])
    proc = foreground(project, hermetic_env, "--resume")  # no previous run at all
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"unattended: no crashed run to resume in {project}: no run has started here yet "
        "(start without --resume, or with --resume-or-start)"
    ]
    assert not (project / ".unattended" / "state.json").exists()

    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = read_state(project)["run_id"]
    proc = foreground(project, hermetic_env, "--resume")  # the previous run ended
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"unattended: no crashed run to resume in {project}: the last run, ")
    assert f"{first}, ended done (exit 0)" in line
    assert read_state(project)["run_id"] == first  # nothing started, nothing archived


def test_resume_or_start_begins_a_new_run_with_the_caps_given(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit", "one"], ["commit", "two"], ["commit", "three"]])
    proc = foreground(project, hermetic_env, "--resume-or-start", "--max-iterations", "2")
    assert proc.returncode == 3, proc.stdout + proc.stderr  # capped by this line's cap
    state = read_state(project)
    assert state["iteration"] == 2 and state["max_iterations"] == 2
    assert "(--resume: nothing to resume)" in run_log(project)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"schema_version": 1, "status": "runn', "not valid JSON"),
        ('{"schema_version": 99, "status": "running"}', "schema_version 99"),
    ],
)
def test_unreadable_state_refuses_resume_allows_new_run(
    project: Path, hermetic_env: dict[str, str], fake_claude, content: str, words: str
) -> None:
    state_file = RunPaths(project).state
    state_file.parent.mkdir(mode=0o700)
    state_file.write_text(content)
    status = run_cli(["status"], hermetic_env, cwd=project)
    assert status.returncode == 2
    assert str(state_file) in status.stderr and words in status.stderr
    assert "Traceback" not in status.stderr

    for mode in ([], ["--foreground"]):
        proc = run_cli(["start", *FAST, "--resume", *mode], hermetic_env, cwd=project)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert str(state_file) in proc.stderr and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert state_file.read_text() == content
    assert fake_claude.calls() == []

    fake_claude.script([["commit", "done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert read_state(project)["status"] == "done"
    archived = list((RunPaths(project).runs).glob("*/state.json"))
    assert [p.read_text() for p in archived] == [content]


def test_pid_reuse_is_not_mistaken_for_the_daemon(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit"], ["hang"]])
    detached(project, hermetic_env)
    old = _kill_daemon_mid_iteration(project)
    kill_tree(old["worker_pid"])
    # The dead daemon's pid now "belongs" to an unrelated live process (a reused PID).
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        forged = {**old, "pid": stranger.pid, "pid_create_time": old["pid_create_time"] - 1000}
        RunPaths(project).state.write_text(json.dumps(forged))
        (project / ".unattended" / "supervisor.pid").write_text(
            f"{stranger.pid} {forged['pid_create_time']}\n"
        )
        status = json.loads(run_cli(["status", "--json"], hermetic_env, cwd=project).stdout)
        assert status["status"] == "crashed" and status["alive"] is False
        stop = run_cli(["stop", "--now"], hermetic_env, cwd=project)
        assert stop.returncode == 0 and "no active run" in stop.stdout
        assert pid_alive(stranger.pid)  # never signalled
        fake_claude.script([["commit", "done"]])
        proc = foreground(project, hermetic_env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert read_state(project)["run_id"] != old["run_id"]
        assert pid_alive(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()
