"""--on-done push / pr against a real bare repository as the remote and a fake gh / glab."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git
from tests.fakes.forge_fixture import FakeForge, fake_forge  # noqa: F401
from unattended.contracts.settings import Settings
from unattended.contracts.status import RunStatus
from unattended.supervisor.run import forge, on_done

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "T",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "T",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def _commit(repo: Path, name: str) -> str:
    (repo / name).write_text(name + "\n")
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project on branch `work` whose origin is a bare repository (a local path)."""
    for key, value in GIT_ENV.items():  # HOME is a temp dir already (conftest)
        monkeypatch.setenv(key, value)
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q", "-b", "work")
    _commit(project, "one.txt")
    git(project, "remote", "add", "origin", str(bare))
    return project


def _remote_head(project: Path, branch: str) -> str | None:
    bare = Path(git(project, "remote", "get-url", "--push", "origin"))
    proc = subprocess.run(
        ["git", "-C", str(bare), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() or None


def _deliver(project: Path, status: RunStatus = RunStatus.DONE, env=None, **settings):  # noqa: ANN001, ANN202
    s = Settings(**settings)
    return on_done.deliver(project, s, status, "Fix the tests", "body text\n", env or os.environ)


def test_push_puts_the_branch_on_the_remote(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    result = _deliver(repo, on_done="push")
    assert result.error is None
    assert result.pushed_ref == "origin/work"
    assert _remote_head(repo, "work") == head
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "work"  # the local branch stays


def test_push_follows_the_branch_upstream_or_remote_option(repo: Path, tmp_path: Path) -> None:
    fork = tmp_path / "fork.git"
    git(tmp_path, "init", "-q", "--bare", str(fork))
    git(repo, "remote", "add", "fork", str(fork))
    git(repo, "config", "branch.work.remote", "fork")
    git(repo, "config", "branch.work.merge", "refs/heads/night")
    assert _deliver(repo, on_done="push").pushed_ref == "fork/night"
    assert git(fork, "rev-parse", "refs/heads/night") == git(repo, "rev-parse", "HEAD")
    assert _deliver(repo, on_done="push", remote="origin").pushed_ref == "origin/work"


def test_push_never_forces_over_a_diverged_remote(repo: Path, tmp_path: Path) -> None:
    _deliver(repo, on_done="push")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "work", git(repo, "remote", "get-url", "origin"), str(other))
    theirs = _commit(other, "theirs.txt")
    git(other, "push", "-q", "origin", "work")
    ours = _commit(repo, "ours.txt")
    result = _deliver(repo, on_done="push")
    assert result.pushed_ref is None
    assert result.error is not None and result.error.startswith("push failed: git push to origin")
    assert "rejected" in result.error
    assert _remote_head(repo, "work") == theirs  # their work is intact
    assert git(repo, "rev-parse", "HEAD") == ours  # and so is ours


def test_push_refuses_protected_branches_locally_and_upstream(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "main")
    result = _deliver(repo, on_done="push")
    assert result.error == (
        "push failed: refusing to push to protected branch main "
        "(protected: main, master, develop, trunk)"
    )
    git(repo, "switch", "-q", "-c", "release")
    result = _deliver(repo, on_done="push", protected_branches=["release"])
    assert result.error is not None and "protected branch release" in result.error
    git(repo, "switch", "-q", "work")
    git(repo, "config", "branch.work.remote", "origin")
    git(repo, "config", "branch.work.merge", "refs/heads/master")
    result = _deliver(repo, on_done="push")
    assert result.error is not None and "protected branch master" in result.error
    assert _remote_head(repo, "main") is None and _remote_head(repo, "master") is None


def test_push_without_a_remote_is_one_line(repo: Path) -> None:
    git(repo, "remote", "remove", "origin")
    result = _deliver(repo, on_done="push")
    assert result.pushed_ref is None
    assert result.error is not None
    assert result.error.startswith("push failed: git push to origin: fatal: 'origin'")
    assert "\n" not in result.error


def test_push_is_skipped_unless_the_ending_is_wanted() -> None:
    assert not on_done.wanted(Settings(on_done="print"), RunStatus.DONE)
    assert on_done.wanted(Settings(on_done="push"), RunStatus.DONE)
    assert not on_done.wanted(Settings(on_done="push"), RunStatus.CAPPED)
    also = Settings(on_done="pr", on_done_also="capped,stuck")
    assert also.on_done_also == ["capped", "stuck"]
    assert on_done.wanted(also, RunStatus.STUCK)
    assert not on_done.wanted(also, RunStatus.BLOCKED)
    assert not on_done.wanted(also, RunStatus.FAILED)
    with pytest.raises(ValueError, match="on_done_also takes capped, stuck, blocked, not done"):
        Settings(on_done_also="done")


def test_pr_on_github_opens_a_draft_then_updates_it(repo: Path, fake_forge: FakeForge) -> None:  # noqa: F811
    env = fake_forge.env(dict(os.environ))
    kwargs = {"on_done": "pr", "forge": "github", "on_done_also": ["stuck"]}
    first = _deliver(repo, RunStatus.STUCK, env, **kwargs)
    assert first.error is None, first.error
    assert first.pr_url == "https://github.com/acme/widgets/pull/1"
    pr = fake_forge.state()["prs"][0]
    assert pr["isDraft"] is True and pr["head"] == "work" and pr["title"] == "Fix the tests"
    assert pr["body"] == "body text\n"
    create = fake_forge.calls("gh")[-1]
    assert create["argv"][:2] == ["pr", "create"] and "--draft" in create["argv"]
    assert not any(a.startswith("--force") for c in fake_forge.calls() for a in c["argv"])
    assert create["env"]["GH_PROMPT_DISABLED"] == "1"

    second = _deliver(repo, RunStatus.DONE, env, **kwargs)
    assert second.pr_url == first.pr_url  # updated, not a second one
    assert len(fake_forge.state()["prs"]) == 1
    assert fake_forge.state()["prs"][0]["isDraft"] is False
    verbs = [c["argv"][:2] for c in fake_forge.calls("gh")]
    assert verbs[-3:] == [["pr", "list"], ["pr", "edit"], ["pr", "ready"]]


def test_pr_on_gitlab_is_chosen_from_the_remote_url(repo: Path, fake_forge: FakeForge) -> None:  # noqa: F811
    bare = git(repo, "remote", "get-url", "origin")
    # Fetch URL on gitlab.com (with a token that must never reach argv), pushes to the bare repo.
    git(repo, "remote", "set-url", "origin", "https://oauth2:s3cret@gitlab.com/acme/widgets.git")
    git(repo, "remote", "set-url", "--push", "origin", bare)
    env = fake_forge.env(dict(os.environ))
    result = _deliver(repo, RunStatus.DONE, env, on_done="pr")
    assert result.error is None, result.error
    assert result.pr_url == "https://gitlab.com/acme/widgets/-/merge_requests/1"
    mr = fake_forge.state()["prs"][0]
    assert mr["draft"] is False and mr["body"] == "body text\n"
    create = fake_forge.calls("glab")[-1]["argv"]
    assert create[:2] == ["mr", "create"] and "--yes" in create
    assert create[create.index("--repo") + 1] == "https://gitlab.com/acme/widgets"
    assert not any("s3cret" in a for c in fake_forge.calls() for a in c["argv"])
    again = _deliver(repo, RunStatus.DONE, env, on_done="pr")
    assert again.pr_url == result.pr_url
    assert fake_forge.calls("glab")[-1]["argv"][:3] == ["mr", "update", "1"]


def test_pr_failure_after_the_push_keeps_the_pushed_ref(repo: Path, fake_forge: FakeForge) -> None:  # noqa: F811
    fake_forge.set(fail="create")
    result = _deliver(
        repo, RunStatus.DONE, fake_forge.env(dict(os.environ)), on_done="pr", forge="github"
    )
    assert result.pushed_ref == "origin/work"
    assert result.pr_url is None
    assert result.error == (
        "pull request failed: gh pr create: "
        "GraphQL: Resource not accessible by integration (createPullRequest)"
    )


@pytest.mark.parametrize(
    ("url", "expected", "repo_arg"),
    [
        ("git@github.com:acme/widgets.git", "github", "github.com/acme/widgets"),
        ("https://x-access-token:tok@github.com/acme/widgets", "github", "github.com/acme/widgets"),
        ("ssh://git@gitlab.example.com/group/sub/app.git", "gitlab", None),
        ("/srv/git/app.git", None, None),
        ("file:///srv/git/app.git", None, None),
        ("https://git.example.com/acme/widgets.git", None, None),
    ],
)
def test_forge_is_told_from_the_url(url: str, expected: str | None, repo_arg: str | None) -> None:
    assert forge.forge_from_url(url) == expected
    if repo_arg:
        assert forge.host_and_path(url) == tuple(repo_arg.split("/", 1))


def test_preflight_checks_the_forge_cli(repo: Path, fake_forge: FakeForge) -> None:  # noqa: F811
    env = fake_forge.env(dict(os.environ))
    assert forge.forge_checks(repo, Settings(on_done="push"), env) == []
    [check] = forge.forge_checks(repo, Settings(on_done="pr"), env)
    assert not check.ok
    assert check.message == (
        "--on-done pr: remote origin is neither GitHub nor GitLab: pass --forge github|gitlab "
        "(or --remote NAME)"
    )
    [check] = forge.forge_checks(repo, Settings(on_done="pr", forge="github"), env)
    assert check.ok, check.message
    fake_forge.set(logged_in=False)
    [check] = forge.forge_checks(repo, Settings(on_done="pr", forge="gitlab"), env)
    assert check.message == (
        "--on-done pr: glab is not logged in: run `glab auth login` (or set GITLAB_TOKEN)"
    )
    bare_env = {**env, "PATH": "/nonexistent"}
    [check] = forge.forge_checks(repo, Settings(on_done="pr", forge="github"), bare_env)
    assert check.message == (
        "--on-done pr needs gh on PATH for github: install it, or use --on-done push"
    )


def test_title_and_body(repo: Path) -> None:
    assert on_done.pr_title("\n# Fix the flaky tests\nmore", "r1") == "Fix the flaky tests"
    assert on_done.pr_title("", "r1") == "unattended run r1"
    long = on_done.pr_title("x" * 300, "r1")
    assert len(long) == on_done.TITLE_MAX and long.endswith("…")


def test_the_final_notification_says_what_on_done_did(repo: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from unattended.contracts.state import RunState
    from unattended.supervisor.run.summary import notification_summary

    now = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    state = RunState(
        run_id="r1",
        status=RunStatus.STUCK,
        project=str(repo),
        started_at=now,
        updated_at=now,
        deadline=now + timedelta(hours=1),
        max_iterations=5,
        stop_reason="no progress",
        pushed_ref="origin/work",
        pr_url="https://github.com/acme/widgets/pull/3",
    )
    lines = notification_summary(repo, state, [], now.timestamp(), []).splitlines()
    assert lines[1:4] == [
        "why: no progress",
        "pushed: origin/work",
        "pull request: https://github.com/acme/widgets/pull/3",
    ]
    state.pushed_ref = state.pr_url = None
    state.on_done_error = "push failed: git push to origin: rejected (fetch first)"
    summary = notification_summary(repo, state, [], now.timestamp(), [])
    assert summary.splitlines()[2] == state.on_done_error
