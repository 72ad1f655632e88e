"""supervisor.gitfacts against real git repositories in temp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.git_helpers import IDENTITY, git, hermetic_git  # noqa: F401 - autouse
from unattended.supervisor.git.facts import (
    GitError,
    NotAGitRepo,
    commit_range_summary,
    ensure_excluded,
    files_changed,
    gather_repo_facts,
    run_git,
    switch_branch,
)

WL = ("PROMPT.md", "unattended.toml")


def make_repo(path: Path, files: dict[str, str] | None = None, commit: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "work")
    for name, text in (files or {"README.md": "hello\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    if commit:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
    return path


def test_not_a_git_repo_is_a_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotAGitRepo, match="not inside a git work tree"):
        gather_repo_facts(plain, WL)
    with pytest.raises(NotAGitRepo, match="not a directory"):
        gather_repo_facts(tmp_path / "missing", WL)


def test_clean_repo_facts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    facts = gather_repo_facts(repo, WL)
    assert facts.top == repo.resolve()
    assert facts.git_dir == (repo / ".git").resolve()
    assert facts.git_dir.is_absolute()
    assert facts.head == git(repo, "rev-parse", "HEAD").strip()
    assert facts.branch == "work"
    assert facts.detached is False
    assert facts.dirty_paths == ()


def test_dirty_paths_skip_whitelist_and_state_dir(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n", "PROMPT.md": "p\n", "old.txt": "o\n"})
    (repo / "a.txt").write_text("changed\n")
    (repo / "PROMPT.md").write_text("new prompt\n")
    (repo / "unattended.toml").write_text("hours = 1\n")
    (repo / ".unattended").mkdir()
    (repo / ".unattended" / "state.json").write_text("{}")
    (repo / "notes").mkdir()
    (repo / "notes" / "todo.md").write_text("x")
    (repo / "new file ü.txt").write_text("x")
    git(repo, "mv", "old.txt", "renamed.txt")

    facts = gather_repo_facts(repo, WL)
    assert set(facts.dirty_paths) == {"a.txt", "notes/", "new file ü.txt", "renamed.txt"}

    facts = gather_repo_facts(repo, (*WL, "notes/*", "*.txt"))
    assert facts.dirty_paths == ()
    # With an empty whitelist only .unattended/ stays quiet.
    assert ".unattended/" not in gather_repo_facts(repo, ()).dirty_paths
    assert "PROMPT.md" in gather_repo_facts(repo, ()).dirty_paths


def test_project_in_a_subdirectory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app/README.md": "x\n"})
    app = repo / "app"
    (app / "PROMPT.md").write_text("p\n")
    (app / ".unattended").mkdir()
    (app / ".unattended" / "run.log").write_text("x\n")
    (repo / "PROMPT.md").write_text("top-level, not the project's\n")
    facts = gather_repo_facts(app, WL)
    assert facts.top == repo.resolve()
    assert facts.dirty_paths == ("PROMPT.md",)


def test_detached_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "--detach")
    facts = gather_repo_facts(repo, WL)
    assert facts.detached is True
    assert facts.branch is None
    assert facts.head == head


def test_repo_without_commits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"x.txt": "x"}, commit=False)
    facts = gather_repo_facts(repo, WL)
    assert facts.head is None
    assert facts.branch == "work"
    assert facts.detached is False
    assert facts.dirty_paths == ("x.txt",)


def test_linked_worktree_and_its_exclude_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(wt))
    facts = gather_repo_facts(wt, WL)
    assert facts.top == wt.resolve()
    assert facts.git_dir == (repo / ".git" / "worktrees" / "wt").resolve()
    assert facts.common_dir == (repo / ".git").resolve()
    assert facts.branch == "side"

    ensure_excluded(facts.git_dir)  # the worktree's git dir: must follow commondir
    assert "/.unattended/" in (repo / ".git" / "info" / "exclude").read_text()
    (wt / ".unattended").mkdir()
    (wt / ".unattended" / "x").write_text("x")
    assert "?? .unattended/" not in git(wt, "status", "--porcelain")


def test_ensure_excluded_is_idempotent_and_keeps_content(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    exclude = repo / ".git" / "info" / "exclude"
    exclude.write_text("# mine\n*.swp")  # no trailing newline
    ensure_excluded(repo / ".git")
    ensure_excluded(repo / ".git")
    assert exclude.read_text() == "# mine\n*.swp\n/.unattended/\n"

    exclude.unlink()
    exclude.parent.rmdir()
    ensure_excluded(repo / ".git", "/sub/.unattended/")
    assert exclude.read_text() == "/sub/.unattended/\n"


def test_switch_branch_creates_from_head_and_keeps_work(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    head = git(repo, "rev-parse", "HEAD").strip()
    (repo / "README.md").write_text("uncommitted\n")

    assert switch_branch(repo, "night-work", create_from_head=True) is True
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "night-work"
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert (repo / "README.md").read_text() == "uncommitted\n"

    assert switch_branch(repo, "work", create_from_head=True) is False
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "work"

    with pytest.raises(GitError, match="does not exist"):
        switch_branch(repo, "nope", create_from_head=False)
    for bad in ("-x", "a..b", "with space", ""):
        with pytest.raises(GitError, match="invalid branch name"):
            switch_branch(repo, bad, create_from_head=True)


def test_switch_branch_in_repo_without_commits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", commit=False)
    assert switch_branch(repo, "night", create_from_head=True) is True
    assert gather_repo_facts(repo, WL).branch == "night"


def test_commit_range_summary_and_files_changed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    before = git(repo, "rev-parse", "HEAD").strip()
    (repo / "b.txt").write_text("b\n")
    git(repo, "add", "b.txt")
    git(repo, "commit", "-q", "-m", "add b")
    (repo / "a.txt").write_text("a2\n")
    (repo / "c d.txt").write_text("c\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "touch a, add c d")
    after = git(repo, "rev-parse", "HEAD").strip()

    summary = commit_range_summary(repo, before, after)
    assert [s for _, s in summary] == ["add b", "touch a, add c d"]
    assert summary[-1][0] == after
    assert commit_range_summary(repo, before, after, limit=1) == [summary[-1]]
    assert commit_range_summary(repo, after, after) == []
    assert commit_range_summary(repo, None, None) == []
    assert [s for _, s in commit_range_summary(repo, None, after)][0] == "initial"
    assert commit_range_summary(repo, "0" * 40, after) == []  # unknown commit: no crash

    assert files_changed(repo, before, after) == 3
    assert files_changed(repo, after, after) == 0
    assert files_changed(repo, None, after) == 3


def test_run_git_errors_name_the_command(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    with pytest.raises(GitError) as err:
        run_git(repo, "rev-parse", "--verify", "no-such-ref")
    text = str(err.value)
    assert text.startswith("git rev-parse --verify no-such-ref failed:")
    assert "\n" not in text
    assert run_git(repo, "rev-parse", "--verify", "no-such-ref", check=False) == ""


def test_run_git_ignores_inherited_git_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon started from a git hook inherits GIT_DIR; -C project must still win."""
    repo = make_repo(tmp_path / "r")
    other = make_repo(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    facts = gather_repo_facts(repo, WL)
    assert facts.git_dir == (repo / ".git").resolve()
    assert facts.head == git(repo, "--git-dir", str(repo / ".git"), "rev-parse", "HEAD").strip()


def test_status_does_not_take_the_index_lock(tmp_path: Path) -> None:
    """With a worker's index.lock held, gathering facts still works and leaves it alone."""
    repo = make_repo(tmp_path / "r")
    (repo / "README.md").write_text("changed\n")
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    facts = gather_repo_facts(repo, WL)
    assert facts.dirty_paths == ("README.md",)
    assert lock.exists()
