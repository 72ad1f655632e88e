"""A clone of an untrusted repository that tracks ``.unattended/run.log`` as a symlink to a file
outside it: ``start`` refuses (exit 2, one line, before anything runs), and the file the link
points to is never touched. A symlink planted there after a clone is refused the same way."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import git, run_cli
from tests.e2e.daemon.scenario import FAST

PRECIOUS = "# the user's shell startup file\n"


def _refusal(project: Path, env: dict[str, str], fake_claude) -> str:  # noqa: ANN001
    proc = run_cli(["start", *FAST], env, cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("unattended: "), proc.stderr
    assert fake_claude.calls() == []
    return lines[0]


def test_a_clone_tracking_a_run_log_symlink_is_refused(
    tmp_path: Path, project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    bashrc = tmp_path / "victim-home" / ".bashrc"
    bashrc.parent.mkdir()
    bashrc.write_text(PRECIOUS)
    os.chmod(bashrc, 0o644)
    # The hostile upstream: it commits .unattended/run.log -> the victim's ~/.bashrc.
    (project / ".unattended").mkdir()
    (project / ".unattended" / "run.log").symlink_to(bashrc)
    git(project, "add", "-f", ".unattended/run.log", env=hermetic_env)
    git(project, "commit", "-q", "-m", "helpful defaults", env=hermetic_env)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "work", str(project), str(clone), env=hermetic_env)
    assert (clone / ".unattended" / "run.log").is_symlink()
    (clone / "PROMPT.md").write_text("Fix the tests.\n")

    line = _refusal(clone, hermetic_env, fake_claude)
    assert ".unattended/run.log is a symlink tracked by git" in line
    assert "git rm --cached .unattended/run.log" in line
    assert bashrc.read_text() == PRECIOUS
    assert not (clone / ".unattended" / "state.json").exists()
    dry = run_cli(["start", *FAST, "--dry-run"], hermetic_env, cwd=clone)
    assert dry.returncode == 2 and "[FAIL]" in dry.stdout and "symlink" in dry.stdout


def test_a_planted_state_dir_symlink_is_refused(
    tmp_path: Path, project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / ".unattended").symlink_to(elsewhere)
    line = _refusal(project, hermetic_env, fake_claude)
    assert ".unattended is a symlink" in line
    assert list(elsewhere.iterdir()) == []


def test_a_planted_lock_symlink_is_refused(
    tmp_path: Path, project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    victim = tmp_path / "victim"
    victim.write_text(PRECIOUS)
    (project / ".git" / "unattended.lock").symlink_to(victim)
    line = _refusal(project, hermetic_env, fake_claude)
    assert "unattended.lock is a symlink" in line
    assert victim.read_text() == PRECIOUS
