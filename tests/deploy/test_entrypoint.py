"""The container's entrypoint (deploy/container/entrypoint.sh), run locally against a bare
repository: clone or reuse, resume when a state exists, the exit code and the termination
message, SIGTERM forwarded; and once with the real daemon and the fake claude, end to end."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, git, wait_for
from unattended.supervisor.views.kube_ps import parse_outcome

ENTRYPOINT = REPO_ROOT / "deploy" / "container" / "entrypoint.sh"

FAKE_UNATTENDED = """
import json, os, signal, sys, time
from pathlib import Path
with open(os.environ["FAKE_ARGV"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
state = {"status": "blocked", "exit_code": 4, "iteration": 2, "cost_usd": 0.5,
         "stop_reason": "the worker needs a human",
         "pr_url": "https://github.com/acme/widgets/pull/7"}
def stopped(*_):
    Path(".unattended/state.json").write_text(json.dumps(
        {**state, "status": "stopped", "exit_code": 6, "stop_reason": "received SIGTERM"}))
    sys.exit(6)
signal.signal(signal.SIGTERM, stopped)
Path(".unattended").mkdir(exist_ok=True)
if os.environ.get("FAKE_WAIT"):
    Path(os.environ["FAKE_WAIT"]).touch()
    time.sleep(60)
Path(".unattended/state.json").write_text(json.dumps(state))
sys.exit(4)
"""


@pytest.fixture
def bare(project: Path, tmp_path: Path, hermetic_env: dict[str, str]) -> Path:
    """A bare repository made from the `project` fixture, with a branch `night` of its own."""
    path = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(path), env=hermetic_env)
    git(path, "branch", "night", "work", env=hermetic_env)
    return path


@pytest.fixture
def volume(tmp_path: Path, bare: Path, hermetic_env: dict[str, str]) -> dict[str, str]:
    """The pod's environment: the volume's repo and home dirs, the termination log."""
    vol = tmp_path / "volume"
    vol.mkdir()
    return {
        **hermetic_env,
        "UNATTENDED_REPO_URL": str(bare),
        "UNATTENDED_REPO_DIR": str(vol / "repo"),
        "HOME": str(vol / "home"),
        "UNATTENDED_TERMINATION_LOG": str(tmp_path / "termination-log"),
    }


def entry(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=120
    )


def fake_unattended(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    script = tmp_path / "fake_unattended.py"
    script.write_text(FAKE_UNATTENDED)
    wrapper = tmp_path / "unattended"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(script))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return {**env, "UNATTENDED_BIN": str(wrapper), "FAKE_ARGV": str(tmp_path / "argv.jsonl")}


def argvs(env: dict[str, str]) -> list[list[str]]:
    return [json.loads(line) for line in Path(env["FAKE_ARGV"]).read_text().splitlines()]


def test_clone_then_reuse(volume: dict[str, str]) -> None:
    repo = Path(volume["UNATTENDED_REPO_DIR"])
    first = entry({**volume, "UNATTENDED_BRANCH": "night"}, "clone")
    assert first.returncode == 0, first.stderr
    assert "on its branch night" in first.stderr
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "night"
    (repo / "work-in-progress.txt").write_text("a previous pod's work\n")
    again = entry({**volume, "UNATTENDED_BRANCH": "night"}, "clone")
    assert again.returncode == 0, again.stderr
    assert "reusing the clone" in again.stderr
    assert (repo / "work-in-progress.txt").exists()  # not cloned over


def test_a_new_branch_is_left_to_start(volume: dict[str, str]) -> None:
    proc = entry({**volume, "UNATTENDED_BRANCH": "fresh"}, "clone")
    assert proc.returncode == 0, proc.stderr
    assert "unattended start creates fresh" in proc.stderr
    assert git(Path(volume["UNATTENDED_REPO_DIR"]), "rev-parse", "--abbrev-ref", "HEAD") == "work"


def test_incomplete_and_foreign_directories(volume: dict[str, str]) -> None:
    repo = Path(volume["UNATTENDED_REPO_DIR"])
    (repo / ".git").mkdir(parents=True)  # a pod killed mid-clone
    proc = entry(volume, "clone")
    assert proc.returncode == 0 and "removing an incomplete clone" in proc.stderr
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "work"

    subprocess.run(["rm", "-rf", str(repo / ".git")], check=True)
    proc = entry(volume, "clone")
    assert proc.returncode == 2
    assert "exists and is not a git repository: refusing to overwrite it" in proc.stderr

    (repo / ".git").mkdir()
    (repo / ".unattended").mkdir()
    (repo / ".unattended" / "state.json").write_text("{}")
    proc = entry(volume, "clone")
    assert proc.returncode == 2 and "refusing to delete it" in proc.stderr
    assert (repo / ".unattended" / "state.json").exists()


def test_git_token_reaches_git_but_no_file(volume: dict[str, str]) -> None:
    env = {**volume, "GIT_TOKEN": "s3cr3t-token"}
    assert entry(env, "clone").returncode == 0
    gitconfig = Path(volume["HOME"]) / ".gitconfig"
    assert "s3cr3t-token" not in gitconfig.read_text()
    filled = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=github.com\n\n",
        env={**env, "GIT_CONFIG_NOSYSTEM": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "username=x-access-token" in filled.stdout
    assert "password=s3cr3t-token" in filled.stdout


def test_run_resumes_when_a_state_exists(volume: dict[str, str], tmp_path: Path) -> None:
    env = fake_unattended(tmp_path, volume)
    assert entry(env, "clone").returncode == 0
    first = entry(env, "run", "--", "--hours", "1")
    assert first.returncode == 4  # the run's own exit code: the Job's policy reads it
    second = entry(env, "run", "--", "--hours", "1")
    assert second.returncode == 4
    assert "resuming it" in second.stderr
    assert argvs(env) == [
        ["start", "--foreground", "--hours", "1"],
        ["start", "--foreground", "--resume", "--allow-dirty", "--hours", "1"],
    ]
    message = Path(env["UNATTENDED_TERMINATION_LOG"]).read_text()
    assert message == (
        "run ended blocked (exit 4) after 2 iteration(s), $0.50: the worker needs a human\n"
        "pull request: https://github.com/acme/widgets/pull/7\n"
    )


def test_sigterm_reaches_the_daemon(volume: dict[str, str], tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    env = {**fake_unattended(tmp_path, volume), "FAKE_WAIT": str(ready)}
    assert entry(env, "clone").returncode == 0
    proc = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "run", "--"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for(ready.exists, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 6
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    message = Path(env["UNATTENDED_TERMINATION_LOG"]).read_text()
    assert message.startswith("run ended stopped (exit 6) after 2 iteration(s)")


def test_the_real_daemon_in_the_entrypoint(
    volume: dict[str, str],
    bare: Path,
    tmp_path: Path,
    fake_claude,  # noqa: ANN001
) -> None:
    fake_claude.script([[{"do": "commit"}, "done"]])
    wrapper = tmp_path / "unattended-real"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m unattended "$@"\n')
    wrapper.chmod(0o755)
    env = {**volume, "UNATTENDED_BIN": str(wrapper), "UNATTENDED_BRANCH": "night-1"}
    assert entry(env, "clone").returncode == 0
    proc = entry(
        env,
        "run",
        "--",
        "--grace-seconds",
        "1",
        "--allowed-tools",
        "Bash,Write",
        "--prompt",
        "Fix the tests",
        "--branch",
        "night-1",
        "--on-done",
        "push",
    )
    assert proc.returncode == 0, proc.stderr
    repo = Path(volume["UNATTENDED_REPO_DIR"])
    assert git(bare, "rev-parse", "refs/heads/night-1") == git(repo, "rev-parse", "HEAD")
    outcome = parse_outcome(Path(env["UNATTENDED_TERMINATION_LOG"]).read_text())
    assert outcome["status"] == "done" and outcome["exit_code"] == 0
    assert outcome["iteration"] == 1 and outcome["pushed_ref"] == "origin/night-1"
    assert os.environ.get("HOME") != volume["HOME"]  # nothing written to the real home
