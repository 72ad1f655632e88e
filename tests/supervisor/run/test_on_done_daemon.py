"""The real daemon ends a run with --on-done push / pr: a bare repository as origin, a fake gh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, read_state, run_cli
from tests.e2e.daemon.scenario import FAST, events, foreground, run_log
from tests.fakes.forge_fixture import FakeForge, fake_forge  # noqa: F401


@pytest.fixture
def origin(project: Path, tmp_path: Path, hermetic_env: dict[str, str]) -> Path:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare), env=hermetic_env)
    git(project, "remote", "add", "origin", str(bare), env=hermetic_env)
    return bare


def test_pr_at_the_end_of_a_done_run(
    project: Path,
    origin: Path,
    hermetic_env: dict[str, str],
    fake_forge: FakeForge,  # noqa: F811
    fake_claude,  # noqa: ANN001
) -> None:
    fake_claude.script([[{"do": "commit"}, "done"]])
    env = fake_forge.env(hermetic_env)
    proc = foreground(project, env, "--on-done", "pr", "--forge", "github")
    assert proc.returncode == 0, proc.stderr + run_log(project)
    state = read_state(project)
    url = "https://github.com/acme/widgets/pull/1"
    assert state["pushed_ref"] == "origin/work"
    assert state["pr_url"] == url
    assert git(origin, "rev-parse", "refs/heads/work") == git(project, "rev-parse", "HEAD")
    pr = fake_forge.state()["prs"][0]
    assert pr["title"] == "Fix the tests; commit each fix."  # the prompt's first line
    assert pr["isDraft"] is False
    assert "- Outcome: done (exit 0)" in pr["body"] and "- Commits: 1" in pr["body"]
    assert f"pull request: {url}" in run_log(project)
    [event] = events(project, "on_done")
    assert event["ok"] is True and event["pr_url"] == url
    status = json.loads(run_cli(["status", "--json"], env, cwd=project).stdout)
    assert status["pushed_ref"] == "origin/work" and status["pr_url"] == url
    report = run_cli(["report", "--out", str(project.parent / "report")], env, cwd=project)
    assert report.returncode == 0, report.stderr
    assert f"Pull request: {url}" in (project.parent / "report" / "report.md").read_text()


def test_a_failed_push_keeps_the_run_exit_code(
    project: Path,
    hermetic_env: dict[str, str],
    fake_claude,  # noqa: ANN001
) -> None:
    fake_claude.script([["blocked"]])
    proc = foreground(project, hermetic_env, "--on-done", "push", "--on-done-also", "blocked")
    assert proc.returncode == 4, proc.stderr  # blocked, whatever happened to the push
    state = read_state(project)
    assert state["pushed_ref"] is None
    assert state["on_done_error"].startswith("push failed: git push to origin: fatal:")
    [event] = events(project, "on_done")
    assert event["ok"] is False and event["error"] == state["on_done_error"]
    assert "the work stays on the local branch" in run_log(project)


def test_preflight_refuses_pr_without_a_logged_in_cli(
    project: Path,
    origin: Path,
    hermetic_env: dict[str, str],
    fake_forge: FakeForge,  # noqa: F811
) -> None:
    fake_forge.set(logged_in=False)
    env = fake_forge.env(hermetic_env)
    proc = run_cli(["start", *FAST, "--on-done", "pr", "--forge", "github"], env, cwd=project)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "unattended: --on-done pr: gh is not logged in: run `gh auth login` (or set GH_TOKEN)"
    ]
    assert not (project / ".unattended" / "state.json").exists()

    def forge_check() -> dict:
        doctor = run_cli(["doctor", "--json"], env, cwd=project)
        return [c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "forge"][0]

    assert forge_check()["level"] == "ok"  # on_done is not "pr" in the project's settings
    (project / "unattended.toml").write_text('on_done = "pr"\nforge = "github"\n')
    check = forge_check()
    assert check["level"] == "fail" and check["required"] is True
    assert check["fix"] == "run `gh auth login` (or set GH_TOKEN)"
