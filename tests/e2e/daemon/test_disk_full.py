"""A full disk (ENOSPC) ends the run `failed`, and state.json is never left half-written.

Real ENOSPC needs a small filesystem: a 2 MiB tmpfs (needs root and mount permission; skipped
with the reason otherwise). The fault-injection seam covers the same rule without one.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, kill_daemon, run_cli
from unattended.contracts.paths import RunPaths
from unattended.supervisor.records.fsio import atomic_write, sys_calls

FAST = ["--grace-seconds", "1", "--allowed-tools", "Bash"]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a real ENOSPC needs a small tmpfs, and mounting one needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_worker_output_fills_the_disk_run_fails_state_intact(
    tiny_fs: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    repo = tiny_fs / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "work", env=hermetic_env)
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "README.md", env=hermetic_env)
    git(repo, "commit", "-q", "-m", "initial", env=hermetic_env)
    (repo / "PROMPT.md").write_text("print a lot\n")
    fake_claude.script([[{"do": "spew", "mb": 8}, "done"]])
    try:
        proc = run_cli(["start", "--foreground", *FAST], hermetic_env, cwd=repo, timeout=120)
    finally:
        kill_daemon(repo)
    assert proc.returncode == 7, proc.stderr
    state = json.loads((repo / ".unattended" / "state.json").read_text())
    assert state["status"] == "failed"
    assert "disk full" in state["stop_reason"]
    assert "disk full" in (repo / ".unattended" / "run.log").read_text()
    assert not list(RunPaths(repo).records.glob(".*.tmp"))


def test_atomic_write_on_enospc_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, '{"status": "running"}')

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys_calls, "write", full)
    with pytest.raises(OSError) as caught:
        atomic_write(target, '{"status": "failed"}')
    assert caught.value.errno == errno.ENOSPC
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
