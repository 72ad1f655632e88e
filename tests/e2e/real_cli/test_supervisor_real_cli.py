"""The whole product against the REAL Claude Code CLI and a loopback fake of the Messages API.

The fake makes the worker run a Bash `git commit`, then answer with the done marker; the daemon
must see the commit in git, take the marker from the final result only, and end `done` (exit 0).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fakes.fake_api import FakeAnthropic, Turn, Usage
from unattended.contracts.paths import RunPaths

REPO_ROOT = Path(__file__).resolve().parents[3]


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout


def start_foreground(claude_bin: Path, repo: Path, env: dict[str, str], *extra: str):
    argv = [
        sys.executable, "-m", "unattended", "start", "--foreground",
        "--project", str(repo), "--claude-bin", str(claude_bin),
        "--allowed-tools", "Bash", "--branch", "night-work",
        "--hours", "0.1", "--max-iterations", "3", "--grace-seconds", "2",
        "--worker-timeout", "120", *extra,
    ]  # fmt: skip
    env = {**env, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        argv, cwd=repo, env=env, capture_output=True, text=True, timeout=240, check=False
    )


def test_real_cli_commits_then_reports_done(claude_bin, hermetic_env, git_repo, tmp_path):
    (git_repo / "PROMPT.md").write_text("Commit a file named work.txt, then report done.\n")
    command = "echo work > work.txt && git add work.txt && git commit -m 'worker commit'"
    turns = [
        Turn.tool_use(
            "Bash",
            {"command": command, "description": "commit the work"},
            usage=Usage(input_tokens=1000, output_tokens=20),
        ),
        Turn.text("Committed work.txt.\nUNATTENDED_DONE", usage=Usage(1200, 30)),
    ]
    with FakeAnthropic(turns) as api:
        env = hermetic_env(tmp_path, api.base_url)
        run = start_foreground(claude_bin, git_repo, env)
        requests = api.message_requests()
    assert run.returncode == 0, run.stderr + run.stdout
    state = json.loads((git_repo / ".unattended" / "state.json").read_text())
    assert state["status"] == "done"
    assert state["exit_code"] == 0
    assert state["iteration"] == 1
    assert state["last_iteration"]["outcome"] == "done"
    assert state["input_tokens"] > 0 and state["output_tokens"] > 0
    # Evidence from git: the worker's commit is on the branch preflight created.
    assert git(git_repo, env, "branch", "--show-current").strip() == "night-work"
    assert "worker commit" in git(git_repo, env, "log", "--format=%s")
    # The worker got our protocol and settings file; the prompt reached the API.
    assert requests and requests[0].contains("UNATTENDED_BLOCKED")  # our protocol section
    assert requests[0].contains("Commit a file named work.txt")
    run_log = (git_repo / ".unattended" / "run.log").read_text()
    assert "iter 1 done" in run_log
    telemetry = (RunPaths(git_repo).telemetry).read_text().splitlines()
    line = json.loads(telemetry[-1])
    assert line["outcome"] == "done" and line["commits"] == 1
    # Snapshots exist for before and after the iteration.
    refs = git(git_repo, env, "for-each-ref", "--format=%(refname)", "refs/unattended/")
    assert "-before" in refs and "-after" in refs
