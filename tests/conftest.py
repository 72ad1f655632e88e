"""Shared fixtures: a hermetic environment, a git project, the fake claude, and a CLI runner.

Every daemon a test starts is killed at teardown (by the pid recorded in state.json), so a
failing test cannot leave a supervisor behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.claude_fixture import FakeClaude, fake_claude  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def hermetic_env(tmp_path: Path, fake_claude: FakeClaude) -> dict[str, str]:  # noqa: F811
    """os.environ with HOME/XDG dirs in tmp_path, git isolated, the fake claude first on PATH."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "CLAUDE_", "UNATTENDED_", "NOTIFY_SOCKET", "WATCHDOG_"))
        and k != "IS_SANDBOX"  # tests choose it: root without it must be refused bypass mode
    }
    env.update(fake_claude.env())
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local/state"),
        XDG_RUNTIME_DIR=str(home / "run"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
        PYTHONPATH=str(REPO_ROOT),
        # `start` refuses without a credential source; the fake claude never uses it.
        ANTHROPIC_API_KEY="dummy-test-key",
    )
    return env


@pytest.fixture
def project(tmp_path: Path, hermetic_env: dict[str, str]) -> Iterator[Path]:
    """A git repo on branch `work` with one commit and a PROMPT.md; daemons reaped at teardown."""
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "work", env=hermetic_env)
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "README.md", env=hermetic_env)
    git(repo, "commit", "-q", "-m", "initial", env=hermetic_env)
    (repo / "PROMPT.md").write_text("Fix the tests; commit each fix.\n")
    yield repo
    kill_daemon(repo)


def kill_daemon(repo: Path) -> None:
    state = repo / ".unattended" / "state.json"
    try:
        pid = json.loads(state.read_text()).get("pid")
    except (OSError, ValueError):
        return
    if pid:
        kill_tree(pid)


def kill_tree(pid: int) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unattended", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def read_state(repo: Path) -> dict:
    return json.loads((repo / ".unattended" / "state.json").read_text())


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_terminal(repo: Path, timeout: float = 60.0) -> dict:
    terminal = {"done", "blocked", "stuck", "capped", "stopped", "failed"}

    def ended() -> bool:
        try:
            st = read_state(repo)
        except (OSError, ValueError):
            return False
        return st["status"] in terminal and not pid_alive(st["pid"])

    log = repo / ".unattended" / "run.log"
    assert wait_for(ended, timeout), f"run did not end: {log.read_text()}"
    return read_state(repo)
