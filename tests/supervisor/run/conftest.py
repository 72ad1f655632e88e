"""Fixtures for the run-control tests: a private per-user state dir, extra repos, stand-in pids."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import git, kill_daemon


@pytest.fixture(autouse=True)
def private_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In-process code (registry, slots) must never touch the real ~/.local/state."""
    state_home = tmp_path / "home" / ".local" / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state_home))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return state_home / "unattended"


def make_repo(path: Path, env: dict[str, str]) -> Path:
    """A git repo like the shared `project` fixture: branch `work`, one commit, PROMPT.md."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "work", env=env)
    (path / "README.md").write_text("hello\n")
    git(path, "add", "README.md", env=env)
    git(path, "commit", "-q", "-m", "initial", env=env)
    (path / "PROMPT.md").write_text("Sleep a while.\n")
    return path


@pytest.fixture
def repos(tmp_path: Path, hermetic_env: dict[str, str]) -> Iterator[list[Path]]:
    """Three repos; any daemon started in them is killed at teardown."""
    made = [make_repo(tmp_path / f"repo-{n}", hermetic_env) for n in range(3)]
    yield made
    for repo in made:
        kill_daemon(repo)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A live process unrelated to unattended, standing in for a daemon (or a reused pid)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def make_state(project: Path, pid: int, create_time: float | None, status: str = "running", **kw):
    """A RunState as a daemon would write it (pydantic model from contracts.state)."""
    from unattended.contracts.state import RunState

    now = datetime.now(UTC).replace(microsecond=0)
    fields = dict(
        run_id="20261123T031209Z",
        status=status,
        pid=pid,
        pid_create_time=create_time,
        project=str(project),
        started_at=now - timedelta(minutes=5),
        updated_at=now,
        deadline=now + timedelta(hours=24),
        iteration=3,
        max_iterations=200,
        cost_usd=1.25,
        settings={"hours": 24.0, "max_iterations": 200, "max_cost_usd": None},
    )
    fields.update(kw)
    return RunState(**fields)


@pytest.fixture
def loop_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a factory
    """`loop_driver(turns, **settings)`: a LoopDriver whose fake clock is also behind
    ``sys_calls`` (begin_run, run.log, control requests read the same time)."""
    from tests.supervisor.run.driver import FakeClock, LoopDriver
    from unattended.supervisor.records.fsio import sys_calls

    clock = FakeClock()
    monkeypatch.setattr(sys_calls, "time", clock.time)
    monkeypatch.setattr(sys_calls, "monotonic", clock.monotonic)

    def build(turns: list, busy_slots: int = 0, resume: bool = False, **settings) -> LoopDriver:
        return LoopDriver(tmp_path, turns, clock, settings, busy_slots, resume)

    return build
