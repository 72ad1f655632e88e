"""A worker that fills the disk with its own files (not its output: see test_disk_full.py):
the snapshot and state writes meet ENOSPC, the run ends `failed` with that reason, and
state.json is never half-written. The project lives on a tiny tmpfs (we run as root in the test
container); skipped, saying why, where mounting is not allowed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, kill_daemon, run_cli
from tests.e2e.daemon.scenario import foreground
from unattended.contracts.paths import RunPaths


@pytest.fixture
def small_project(tmp_path: Path, hermetic_env: dict[str, str]) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")
    repo = mount / "project"
    try:
        repo.mkdir()
        git(repo, "init", "-q", "-b", "work", env=hermetic_env)
        (repo / "README.md").write_text("hello\n")
        git(repo, "add", "README.md", env=hermetic_env)
        git(repo, "commit", "-q", "-m", "initial", env=hermetic_env)
        (repo / "PROMPT.md").write_text("Fill the disk.\n")
        yield repo
    finally:
        kill_daemon(repo)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill_the_disk(project: Path, env: dict[str, str], fake_claude) -> dict:  # noqa: ANN001
    fill = "dd if=/dev/zero of=filler bs=64k count=200 2>/dev/null; true"
    fake_claude.script([["commit", {"do": "run", "cmd": fill}, "text"], ["commit", "done"]])
    proc = foreground(project, env, timeout=60)
    assert proc.returncode == 7, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "disk full" in proc.stdout  # run.log lines echoed: the file itself may be full
    view = RunPaths(project).state_view
    assert not view.exists() or json.loads(view.read_text())["status"] == "failed"  # never stale
    return json.loads(RunPaths(project).state.read_text())


def test_worker_filling_the_disk_fails_the_run_and_keeps_state_whole(
    small_project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    state = _fill_the_disk(small_project, hermetic_env, fake_claude)
    assert state["schema_version"] == 1 and state["iteration"] == 1  # whole, parseable
    # The final record landed (the daemon keeps a little space in reserve for it).
    assert state["status"] == "failed" and state["exit_code"] == 7
    assert state["stop_reason"].startswith("disk full")
    assert not list(RunPaths(small_project).records.glob(".state.json.*"))
    assert len(fake_claude.calls()) == 1  # no second worker on a full disk
    # Once space is freed, a new run can start.
    (small_project / "filler").unlink()
    status = run_cli(["status", "--json"], hermetic_env, cwd=small_project)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["status"] == "failed" and "disk full" in data["stop_reason"], data
    fake_claude.script([["commit", "done"]])
    proc = foreground(small_project, hermetic_env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_disk_full_leaves_no_temp_files(
    small_project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    _fill_the_disk(small_project, hermetic_env, fake_claude)
    assert not [p.name for p in RunPaths(small_project).records.glob("*.tmp")]
