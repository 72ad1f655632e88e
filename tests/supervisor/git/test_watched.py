"""Quick snapshots (git asked about the watched changes only) against whole ones, in real repos.

A whole snapshot is `add -A` of everything into a copy of the real index; a quick one must come
to the very same tree whatever happened in between: edits, deletions, new and removed
directories, renames, modes, symlinks, ignored files, the worker's own `git add`/`commit`/
`rm --cached`/`reset`, `.gitignore` edits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.git_helpers import git, hermetic_git  # noqa: F401 - autouse fixture
from unattended.platform_adapters import fswatch
from unattended.supervisor.git.snapshots import Snapshotter

pytestmark = pytest.mark.skipif(not fswatch.available(), reason="no inotify on this OS")

NAMES = ["a.txt", "b.py", "sub/c.txt", "sub/deep/d.txt", "e.log", "build/out.bin", "sub/f.log"]
DIRS = ["sub", "sub/deep", "new", "new/inner", "build", "__pycache__"]


def make_repo(base: Path) -> Path:
    repo = base / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "work")
    (repo / ".gitignore").write_text("*.log\nbuild/\n__pycache__/\n")
    (repo / "a.txt").write_text("a\n")
    (repo / "sub" / "deep").mkdir(parents=True)
    (repo / "sub" / "c.txt").write_text("c\n")
    (repo / "sub" / "deep" / "d.txt").write_text("d\n")
    (repo / "build").mkdir()
    (repo / "build" / "kept.bin").write_text("tracked inside an ignored dir\n")
    git(repo, "add", "-A")
    git(repo, "add", "-f", "build/kept.bin")
    git(repo, "commit", "-q", "-m", "root")
    return repo


def reference_tree(repo: Path) -> str:
    """What a whole snapshot holds now: every change added into a copy of the real index."""
    index = repo / ".git" / "reference.index"
    shutil.copyfile(repo / ".git" / "index", index)
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    subprocess.run(
        ["git", "-C", str(repo), "add", "-A", "--ignore-errors", "--", ":/",
         ":(exclude).unattended"],
        env=env, capture_output=True, check=False,
    )  # fmt: skip
    tree = subprocess.run(
        ["git", "-C", str(repo), "write-tree"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    index.unlink()
    return tree


def apply(repo: Path, op: tuple[str, int, int]) -> None:
    kind, i, j = op
    name, other = NAMES[i % len(NAMES)], NAMES[j % len(NAMES)]
    path = repo / name
    directory = repo / DIRS[i % len(DIRS)]
    if kind == "write":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name} {j}\n")
    elif kind == "delete":
        if path.is_file() or path.is_symlink():
            path.unlink()
    elif kind == "mkdir":
        (directory / "x").mkdir(parents=True, exist_ok=True)
        (directory / "x" / f"n{j}.txt").write_text(f"{j}\n")
    elif kind == "rmtree":
        shutil.rmtree(directory, ignore_errors=True)
    elif kind == "rename" and path.is_file():
        target = repo / other
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
    elif kind == "move_dir" and directory.is_dir() and not (repo / f"moved{j}").exists():
        directory.rename(repo / f"moved{j}")
    elif kind == "chmod" and path.is_file():
        path.chmod(0o755 if j % 2 else 0o644)
    elif kind == "symlink" and not path.exists() and not path.is_symlink():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(other)
    elif kind == "touch" and path.exists():
        os.utime(path)
    elif kind == "git_add":
        git(repo, "add", "-A")
    elif kind == "git_commit":
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", f"c{j}")
    elif kind == "rm_cached" and path.exists():
        subprocess.run(["git", "-C", str(repo), "rm", "-q", "--cached", name], capture_output=True)
    elif kind == "force_add" and path.is_file():
        git(repo, "add", "-f", name)
    elif kind == "reset":
        subprocess.run(["git", "-C", str(repo), "reset", "-q", "HEAD~"], capture_output=True)
    elif kind == "ignore_rule":
        extra = "*.py\n" if j % 2 else ""
        (repo / ".gitignore").write_text("*.log\nbuild/\n__pycache__/\n" + extra)
    elif kind == "pycache":
        (repo / "__pycache__").mkdir(exist_ok=True)
        (repo / "__pycache__" / f"m{j}.pyc").write_text("x")


OPS = st.tuples(
    st.sampled_from(
        ["write", "write", "write", "delete", "mkdir", "rmtree", "rename", "move_dir", "chmod",
         "symlink", "touch", "git_add", "git_commit", "rm_cached", "force_add", "reset",
         "ignore_rule", "pycache"]
    ),
    st.integers(0, 20),
    st.integers(0, 20),
)  # fmt: skip


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.lists(OPS, max_size=5), min_size=1, max_size=6))
def test_a_quick_snapshot_holds_exactly_what_a_whole_one_does(steps: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp))
        shooter = Snapshotter(repo, repo / ".git", "prop", watch=True)
        try:
            snap, _ = shooter.take(1, "before")
            assert snap.tree == reference_tree(repo)
            for number, ops in enumerate(steps, start=2):
                for op in ops:
                    with contextlib.suppress(OSError):  # e.g. a write through a dangling link
                        apply(repo, op)
                snap, _ = shooter.take(number, "after")
                assert snap.tree == reference_tree(repo), (number, ops)
        finally:
            shooter.close()
            shooter.flush()


def test_between_workers_git_is_asked_about_the_changed_paths_only(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    shooter = Snapshotter(repo, repo / ".git", "quick", watch=True)
    try:
        shooter.take(1, "before")  # the first look is whole: the watch starts with it
        assert shooter.quick == 0
        (repo / "a.txt").write_text("changed\n")
        (repo / "new").mkdir()
        (repo / "new" / "file.txt").write_text("in a new directory\n")
        git(repo, "add", "a.txt")
        git(repo, "commit", "-q", "-m", "a worker's commit")
        snap, _ = shooter.take(1, "after")
        assert shooter.quick == 1
        assert snap.tree == reference_tree(repo)
        assert "new/file.txt" in git(repo, "ls-tree", "-r", "--name-only", snap.commit)
        (repo / ".gitignore").write_text("*.txt\n")  # what is ignored changed: a whole look
        snap, _ = shooter.take(2, "after")
        assert shooter.quick == 1
        assert snap.tree == reference_tree(repo)
        (repo / "sub" / "c.txt").unlink()
        snap, _ = shooter.take(3, "after")
        assert shooter.quick == 2
        assert "sub/c.txt" not in git(repo, "ls-tree", "-r", "--name-only", snap.commit)
    finally:
        shooter.close()
        shooter.flush()


def test_a_nested_repository_makes_every_snapshot_whole(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    git(repo / "sub", "init", "-q")  # an embedded repository: git's own rules apply
    shooter = Snapshotter(repo, repo / ".git", "nested", watch=True)
    try:
        shooter.take(1, "before")
        (repo / "a.txt").write_text("changed\n")
        snap, _ = shooter.take(1, "after")
        assert shooter.quick == 0
        assert snap.tree == reference_tree(repo)
    finally:
        shooter.close()
        shooter.flush()
