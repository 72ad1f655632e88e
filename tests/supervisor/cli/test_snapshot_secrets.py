"""Ignored files (``.env``, usually secrets) are not put into snapshots unless the user opts in,
and a user who opts in is told that refs/unattended/* then hold them and that mirrors and
bundles carry them (issue 13 item 2). The real daemon, the fake claude, real git."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import git, run_cli
from tests.e2e.daemon.scenario import FAST, foreground, write_toml
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings


def _with_secret(project: Path, env: dict[str, str]) -> None:
    (project / ".gitignore").write_text(".env\n")
    git(project, "add", ".gitignore", env=env)
    git(project, "commit", "-q", "-m", "ignore .env", env=env)
    (project / ".env").write_text("API_TOKEN=s3cret\n")


def _snapshot_files(project: Path) -> set[str]:
    refs = git(project, "for-each-ref", "--format=%(refname)", "refs/unattended/").split()
    assert refs, "the run took no snapshot"
    files: set[str] = set()
    for ref in refs:
        files.update(git(project, "ls-tree", "-r", "--name-only", ref).splitlines())
    return files


def test_the_default_puts_no_ignored_file_into_snapshots(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    assert Settings().snapshot_ignored == []
    _with_secret(project, hermetic_env)
    fake_claude.script([["done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ".env" not in _snapshot_files(project)
    assert "snapshot_ignored" not in RunPaths(project).run_log.read_text()
    assert "snapshot_ignored" not in proc.stderr


def test_opting_in_is_warned_about_refs_mirrors_and_bundles(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    _with_secret(project, hermetic_env)
    write_toml(project, snapshot_ignored=[".env"])
    dry = run_cli(["start", *FAST, "--dry-run"], hermetic_env, cwd=project)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    warning = [line for line in dry.stdout.splitlines() if line.startswith("[warn] snapshots:")]
    assert len(warning) == 1
    for words in ("refs/unattended/*", "git push --mirror", "git bundle --all", ".env"):
        assert words in warning[0]

    fake_claude.script([["done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ".env" in _snapshot_files(project)  # what the user asked for
    assert "unattended: warning: snapshot_ignored (.env)" in proc.stderr
    log = RunPaths(project).run_log.read_text()
    assert "warning: snapshot_ignored (.env) puts ignored files into every snapshot" in log
