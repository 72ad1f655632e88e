"""Issue 13 §10: `start` on a disk that is already full, a read-only .git, a project path with a
newline: one clear line and the documented exit code, never a traceback or a phantom run.

Real ENOSPC and EROFS need a small tmpfs and a read-only bind mount (root; skipped otherwise).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, kill_daemon, run_cli
from tests.e2e.daemon.test_disk_full import tiny_fs  # noqa: F401 - the fixture

FAST = ["--grace-seconds", "1", "--allowed-tools", "Bash"]


def make_repo(repo: Path, env: dict[str, str]) -> Path:
    repo.mkdir()
    git(repo, "init", "-q", "-b", "work", env=env)
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "README.md", env=env)
    git(repo, "commit", "-q", "-m", "initial", env=env)
    (repo / "PROMPT.md").write_text("do the task\n")
    with (repo / ".git" / "info" / "exclude").open("a") as fh:
        fh.write("PROMPT.md\n")
    return repo


def fill(directory: Path) -> None:
    """Use every last block of the file system holding ``directory``."""
    with contextlib.suppress(OSError), (directory / "filler").open("wb") as fh:
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()


def one_line_refusal(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unattended: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("mode", [[], ["--foreground"]], ids=["detached", "foreground"])
def test_start_on_a_full_disk_exits_7_and_leaves_no_run(
    tiny_fs: Path,  # noqa: F811
    hermetic_env: dict[str, str],
    fake_claude,
    mode: list[str],
) -> None:
    repo = make_repo(tiny_fs / "project", hermetic_env)
    fill(tiny_fs)
    try:
        proc = run_cli(["start", *mode, *FAST], hermetic_env, cwd=repo, timeout=60)
    finally:
        kill_daemon(repo)
    line = one_line_refusal(proc, 7)
    assert "cannot start: no space left on device" in line
    assert not (repo / ".unattended" / "state.json").exists(), "a phantom run"
    status = run_cli(["status"], hermetic_env, cwd=repo)
    assert status.returncode == 0 and "no run yet" in status.stdout
    assert fake_claude.calls() == []


@pytest.fixture
def read_only_git(project: Path) -> Iterator[Path]:
    git_dir = project / ".git"
    if os.geteuid() != 0:
        pytest.skip("root ignores file modes: a read-only .git needs a read-only bind mount")
    bind = subprocess.run(["mount", "--bind", str(git_dir), str(git_dir)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        ro = ["mount", "-o", "remount,ro,bind", str(git_dir)]
        if subprocess.run(ro, capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield project
    finally:
        subprocess.run(["umount", "-l", str(git_dir)], check=False)


def test_start_with_a_read_only_git_dir_is_one_line(
    read_only_git: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    proc = run_cli(["start", *FAST], hermetic_env, cwd=read_only_git)
    line = one_line_refusal(proc, 2)
    assert "cannot start: Read-only file system" in line and ".git" in line
    assert fake_claude.calls() == []


def test_a_project_path_with_a_newline_is_one_line(
    tmp_path: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    repo = make_repo(tmp_path / "night\nwork", hermetic_env)
    proc = run_cli(["start", *FAST], hermetic_env, cwd=repo)
    line = one_line_refusal(proc, 2)
    assert "contains a newline" in line and "rename the directory" in line
    assert not (repo / ".unattended").exists()


def test_a_binary_prompt_file_is_one_line(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    (project / "PROMPT.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    proc = run_cli(["start", *FAST, "--allow-dirty"], hermetic_env, cwd=project)
    line = one_line_refusal(proc, 2)
    assert "PROMPT.md is not UTF-8 text" in line and "binary file" in line
    assert fake_claude.calls() == []
