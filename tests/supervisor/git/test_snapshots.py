"""supervisor.snapshots: whole-work-tree snapshots survive a worker's reset --hard / clean -fdx."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from tests.git_helpers import IDENTITY, git, hermetic_git  # noqa: F401 - autouse
from unattended.supervisor.git.restore import restore_snapshot
from unattended.supervisor.git.snapshots import (
    SnapshotError,
    Snapshotter,
    list_snapshots,
    prune_snapshots,
    take_snapshot,
    worktree_id,
)

IGN = (".env", ".env.*")


def write(repo: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def make_repo(path: Path, files: dict[str, str | bytes] | None = None, commit: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "work")
    write(path, {".gitignore": ".env*\nbuild/\n*.log\n", **(files or {"README.md": "hi\n"})})
    if commit:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
    return path


def work_tree(repo: Path) -> dict[str, bytes]:
    """Every file under repo except .git, as bytes."""
    out = {}
    for root, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            full = Path(root) / name
            out[full.relative_to(repo).as_posix()] = full.read_bytes()
    return out


def user_state(repo: Path) -> dict[str, str]:
    """What snapshotting must never change: index, refs the user sees, stash, HEAD."""
    gd = repo / ".git"
    return {
        "index": hashlib.sha256((gd / "index").read_bytes()).hexdigest()
        if (gd / "index").exists()
        else "",
        "staged": git(repo, "ls-files", "-s"),
        "head": (gd / "HEAD").read_text(),
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        "tags": git(repo, "for-each-ref", "refs/tags"),
        "stash": git(repo, "stash", "list"),
        "git_dir_files": " ".join(sorted(p.name for p in gd.iterdir())),
    }


def snap(repo: Path, run: str = "run1", it: int = 1, phase: str = "before", ign=IGN):
    return take_snapshot(repo, repo / ".git", run, it, phase, ign)


def tree_paths(repo: Path, rev: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "-z", "--name-only", rev).split("\0")) - {""}


def test_reset_hard_and_clean_fdx_cannot_lose_work(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"src/app.py": "v1\n", "README.md": "hi\n"})
    head = git(repo, "rev-parse", "HEAD").strip()
    write(
        repo,
        {
            "src/app.py": "v2 uncommitted\n",
            "src/new module.py": "brand new\n",
            "docs/ünïcode ñame.md": "ü\n",
            ".env": b"SECRET=1\r\nOTHER=2\r\n",
            "svc/.env.local": "LOCAL=1\n",
            "build/out.bin": "rebuildable\n",
            "debug.log": "noise\n",
        },
    )
    git(repo, "add", "src/new module.py")  # a staged file too
    (repo / "bin").mkdir()
    (repo / "bin" / "tool").write_text("#!/bin/sh\n")
    (repo / "bin" / "tool").chmod(0o755)
    original = work_tree(repo)

    shot = snap(repo, it=7, phase="before")
    assert set(shot.ignored) == {".env", "svc/.env.local"}
    assert shot.ref == "refs/unattended/run1/0007-before"

    # The worker destroys everything not committed.
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-q", "-fdx")
    assert not (repo / ".env").exists()

    result = restore_snapshot(repo, "run1/7-before", "rescue", with_ignored=True)
    assert result.branch == "rescue"
    assert set(result.written) == {".env", "svc/.env.local"}
    assert result.skipped == ()
    # Created, not checked out; parent is the HEAD of the time; secrets not in the branch.
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "work"
    assert git(repo, "rev-parse", "rescue^").strip() == head
    assert not {".env", "svc/.env.local"} & tree_paths(repo, "rescue")

    git(repo, "switch", "-q", "rescue")
    restored = work_tree(repo)
    expected = {
        k: v for k, v in original.items() if not k.startswith("build/") and k != "debug.log"
    }
    assert restored == expected  # byte for byte, CRLF included
    assert os.access(repo / "bin" / "tool", os.X_OK)
    assert (repo / ".env").stat().st_mode & 0o077 == 0  # written back private


def test_snapshot_never_touches_index_stash_branches_or_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n", "b.txt": "b\n"})
    git(repo, "branch", "feature")
    git(repo, "tag", "v1")
    write(repo, {"a.txt": "stashed\n"})
    git(repo, "stash", "-q")
    write(repo, {"a.txt": "staged\n", "c.txt": "untracked\n", ".env": "S=1\n"})
    git(repo, "add", "a.txt")
    write(repo, {"a.txt": "staged then edited\n", "b.txt": "unstaged\n"})
    before_state, before_tree = user_state(repo), work_tree(repo)

    first = snap(repo, phase="before")
    second = snap(repo, phase="after")

    assert user_state(repo) == before_state  # no temp index left behind either
    assert work_tree(repo) == before_tree
    assert first.tree == second.tree
    assert (
        git(repo, "rev-parse", f"{first.commit}^").strip() == git(repo, "rev-parse", "HEAD").strip()
    )
    # The snapshot holds the work tree's content, not the index's.
    assert git(repo, "show", f"{first.commit}:a.txt") == "staged then edited\n"
    assert git(repo, "show", f"{first.commit}:c.txt") == "untracked\n"
    assert git(repo, "show", f"{first.commit}:.env") == "S=1\n"
    subject = git(repo, "log", "-1", "--format=%s", first.commit).strip()
    assert subject == "unattended snapshot: run run1, iteration 1, before"


def test_tree_hash_is_stable_and_sensitive(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n", "sub/b.txt": "b\n"})
    write(repo, {"u.txt": "u\n", ".env": "S=1\n"})
    base = snap(repo, it=1).tree
    assert snap(repo, it=2).tree == base

    os.utime(repo / "a.txt", (1, 1))  # same content, new stat data
    (repo / ".unattended").mkdir()
    write(repo, {".unattended/state.json": "{}", ".unattended/.env": "not captured\n"})
    write(repo, {"build/x.o": "ignored\n"})
    assert snap(repo, it=3).tree == base

    trees = set()
    for change in ({"sub/b.txt": "B\n"}, {"u.txt": "U\n"}, {".env": "S=2\n"}, {"new.txt": ""}):
        write(repo, change)
        trees.add(snap(repo, it=4).tree)
    (repo / "a.txt").chmod(0o755)
    trees.add(snap(repo, it=5).tree)
    (repo / "u.txt").unlink()
    trees.add(snap(repo, it=6).tree)
    assert len(trees) == 6 and base not in trees


def test_state_dir_is_never_captured_even_if_not_excluded(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    write(
        repo, {".unattended/state.json": "{}", ".unattended/.env": "X\n", "app/.unattended/x": "y"}
    )
    paths = tree_paths(repo, snap(repo).commit)
    assert not any(p.startswith(".unattended/") for p in paths)
    assert "app/.unattended/x" in paths  # only the project's own state dir is left out

    sub = repo / "app"
    write(repo, {"app/.unattended/state.json": "{}"})
    paths = tree_paths(repo, take_snapshot(sub, repo / ".git", "r2", 1, "after", IGN).commit)
    assert not any(p.startswith("app/.unattended/") for p in paths)


def test_ignored_directory_matching_a_glob_is_kept_whole(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    write(repo, {".env.d/db": "pw\n", ".env.d/api": "key\n", "build/.env": "not found\n"})
    shot = snap(repo)
    assert shot.ignored == (".env.d/",)
    paths = tree_paths(repo, shot.commit)
    assert {".env.d/db", ".env.d/api"} <= paths
    assert "build/.env" not in paths  # inside a wholly ignored dir: documented limit

    git(repo, "clean", "-q", "-fdx")
    res = restore_snapshot(repo, shot.ref, "back", with_ignored=True)
    assert set(res.written) == {".env.d/db", ".env.d/api"}
    assert (repo / ".env.d" / "api").read_text() == "key\n"


def test_custom_and_empty_snapshot_ignored(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    write(repo, {".env": "S\n", "local/secrets.log": "x\n", "other.log": "y\n"})
    assert snap(repo, ign=()).ignored == ()
    shot = snap(repo, it=2, ign=("local/*.log",))
    assert shot.ignored == ("local/secrets.log",)


def test_restore_without_ignored_holds_them_back(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    write(repo, {".env": "S=1\n", "work.txt": "w\n"})
    shot = snap(repo)
    (repo / ".env").unlink()
    res = restore_snapshot(repo, shot.ref, "b1")
    assert res.held_back == (".env",)
    assert res.written == ()
    assert not (repo / ".env").exists()
    assert git(repo, "show", "b1:work.txt") == "w\n"


def test_restore_never_overwrites_existing_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    write(repo, {".env": "OLD\n", "svc/.env.prod": "P\n"})
    shot = snap(repo)
    write(repo, {".env": "NEW\n"})  # svc/.env.prod unchanged
    res = restore_snapshot(repo, shot.ref, "b1", with_ignored=True)
    assert res.written == ()
    reasons = dict(res.skipped)
    assert "different content" in reasons[".env"]
    assert "same content" in reasons["svc/.env.prod"]
    assert (repo / ".env").read_text() == "NEW\n"


def test_restore_refusals(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    shot = snap(repo)
    with pytest.raises(SnapshotError, match="already exists"):
        restore_snapshot(repo, shot.ref, "work")
    with pytest.raises(SnapshotError, match="not a valid branch name"):
        restore_snapshot(repo, shot.ref, "bad..name")
    with pytest.raises(SnapshotError, match="no snapshot"):
        restore_snapshot(repo, "run1/0099-after", "b")
    with pytest.raises(SnapshotError, match="no snapshot"):
        restore_snapshot(repo, "HEAD", "b")  # a commit, but not a snapshot
    # A snapshot commit id works too, as does the full ref.
    assert restore_snapshot(repo, shot.commit, "b2").ref == shot.commit
    assert restore_snapshot(repo, shot.ref, "b3").ref == shot.ref
    with pytest.raises(SnapshotError, match="phase"):
        snap(repo, phase="during")


def test_repo_without_commits_or_identity(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"}, commit=False)
    git(repo, "config", "user.useConfigOnly", "true")  # no identity may be guessed
    write(repo, {".env": "S\n"})
    shot = snap(repo)
    assert git(repo, "log", "-1", "--format=%P", shot.commit).strip() == ""
    res = restore_snapshot(repo, shot.ref, "first")
    assert tree_paths(repo, "first") == {".gitignore", "a.txt"}
    assert git(repo, "log", "-1", "--format=%P", res.commit).strip() == ""


def test_detached_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "checkout", "-q", "--detach")
    head = git(repo, "rev-parse", "HEAD").strip()
    write(repo, {"x.txt": "x\n"})
    shot = snap(repo)
    assert git(repo, "rev-parse", f"{shot.commit}^").strip() == head
    restore_snapshot(repo, shot.ref, "saved")
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "show", "saved:x.txt") == "x\n"


def test_awkward_paths(tmp_path: Path) -> None:
    names = {
        "with space/file name.txt": "1\n",
        "ünï/çødé ☃.txt": "2\n",
        "glob[*]?.txt": "3\n",
        "-leading-dash.txt": "4\n",
        "tab\there.txt": "5\n",
        "dir with space/.env.local": "6\n",
        "ünï/.env": "7\n",
    }
    repo = make_repo(tmp_path / "r")
    write(repo, names)
    shot = snap(repo)
    assert set(shot.ignored) == {"dir with space/.env.local", "ünï/.env"}
    git(repo, "clean", "-q", "-fdx")
    res = restore_snapshot(repo, shot.ref, "back", with_ignored=True)
    assert set(res.written) == set(shot.ignored)
    git(repo, "switch", "-q", "back")
    tree = work_tree(repo)
    for name, content in names.items():
        assert tree[name] == content.encode()


def test_linked_worktree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(wt))
    write(wt, {"w.txt": "in worktree\n", ".env": "S\n"})
    wt_git_dir = Path(git(wt, "rev-parse", "--absolute-git-dir").strip())
    shot = take_snapshot(wt, wt_git_dir, "wt-run", 1, "after", IGN)
    assert git(repo, "show", f"{shot.ref}:w.txt") == "in worktree\n"  # refs are shared
    assert not any(p.name.startswith("unattended-") for p in wt_git_dir.iterdir())


def test_list_and_prune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "r")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z")  # an older run
    for it in (1, 2):
        for phase in ("before", "after"):
            snap(repo, run="old-run", it=it, phase=phase)
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    snap(repo, run="2026-11-23T03:12:09Z", it=1, phase="before")
    snap(repo, run="2026-11-23T03:12:09Z", it=1, phase="after")

    every = list_snapshots(repo)
    assert len(every) == 6
    assert [s.short_ref for s in every[:2]] == [
        "2026-11-23T03-12-09Z/0001-after",
        "2026-11-23T03-12-09Z/0001-before",
    ]
    old = list_snapshots(repo, "old-run")
    assert [(s.iteration, s.phase) for s in old] == [
        (2, "after"),
        (2, "before"),
        (1, "after"),
        (1, "before"),
    ]
    first = old[-1]
    assert first.run_id == "old-run"
    assert first.subject == "unattended snapshot: run old-run, iteration 1, before"
    assert first.commit == git(repo, "rev-parse", first.ref).strip()
    assert first.date.tzinfo is not None

    assert prune_snapshots(repo, keep_run_ids=["2026-11-23T03:12:09Z"]) == 4
    assert [s.run_id for s in list_snapshots(repo)] == ["2026-11-23T03-12-09Z"] * 2
    assert prune_snapshots(repo, keep_run_ids=["2026-11-23T03:12:09Z"]) == 0
    assert prune_snapshots(repo, keep_run_ids=[]) == 2
    assert list_snapshots(repo) == []
    assert git(repo, "for-each-ref", "refs/heads").count("\n") == 1  # branches untouched


# ----- the daemon's Snapshotter: a kept index, unchanged snapshots not written twice -----


def shooter(repo: Path, run: str = "run1", ign=IGN, git_dir: Path | None = None) -> Snapshotter:
    return Snapshotter(repo, git_dir or repo / ".git", run, ign)


def test_snapshotter_trees_equal_one_shot_snapshots(tmp_path: Path) -> None:
    """The kept index gives exactly the tree a fresh one would, through every kind of change,
    including the worker staging an ignored file and deleting a force-added secret."""
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n", "sub/b.txt": "b\n"})
    keeper = shooter(repo)
    steps = [
        {},
        {"u.txt": "untracked\n"},
        {".env": "S=1\n", "sub/b.txt": "B\n"},
        {"build/out.o": "ignored\n"},
        "git add -f build/out.o",  # tracked although ignored: the real index says so
        "rm .env",
        {"sub/deep/n.txt": "new dir\n", "a.txt": "A\n"},
        "git commit -q -am next",
        "rm u.txt",
        {"later.txt": "untracked, then ignored\n"},
        {".gitignore": ".env*\nbuild/\n*.log\nlater.txt\n"},  # the worker ignores it
    ]
    for n, step in enumerate(steps, start=1):
        if isinstance(step, str):
            cmd, *args = step.split()
            if cmd == "rm":
                (repo / args[0]).unlink()
            else:
                git(repo, *args)
        else:
            write(repo, step)
        kept, head = keeper.take(n, "after")
        fresh = snap(repo, run="fresh", it=n, phase="after")
        assert kept.tree == fresh.tree, step
        assert kept.ignored == fresh.ignored, step
        assert head == git(repo, "rev-parse", "HEAD").strip()
    assert "build/out.o" in tree_paths(repo, kept.commit)
    assert ".env" not in tree_paths(repo, kept.commit)
    assert user_state(repo)["staged"] == git(repo, "ls-files", "-s")  # the user's index as is


def test_snapshotter_writes_nothing_when_nothing_changed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    write(repo, {"wip.txt": "work in progress\n", ".env": "S=1\n"})
    keeper = shooter(repo)
    first, _ = keeper.take(1, "before")
    again, _ = keeper.take(1, "after")
    # Same HEAD, same tree, same held-back files: the same commit, under both names.
    assert (again.commit, again.tree, again.ignored) == (first.commit, first.tree, first.ignored)
    keeper.flush()  # the refs are written while the daemon goes on
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/unattended/")
    assert refs.split() == [
        "refs/unattended/run1/0001-after", first.commit,
        "refs/unattended/run1/0001-before", first.commit,
    ]  # fmt: skip
    assert git(repo, "rev-list", "--count", "--all", "--glob=refs/unattended/*").strip() == "2"
    write(repo, {"wip.txt": "more\n"})
    changed, _ = keeper.take(2, "after")
    assert changed.commit != first.commit and changed.ignored == (".env",)
    keeper.flush()
    git(repo, "reset", "-q", "--hard")
    git(repo, "clean", "-q", "-fdx")
    res = restore_snapshot(repo, "run1/2-after", "back", with_ignored=True)
    assert res.written == (".env",)
    assert git(repo, "show", "back:wip.txt") == "more\n"
    assert ".env" not in tree_paths(repo, "back")


def test_snapshotter_packs_its_refs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    keeper = shooter(repo)
    keeper.PACK_EVERY = 3
    for n in range(1, 4):
        write(repo, {"f.txt": f"{n}\n"})
        keeper.take(n, "after")
    packed = (repo / ".git" / "packed-refs").read_text()
    assert "refs/unattended/run1/0003-after" in packed
    assert not (repo / ".git" / "refs" / "unattended").exists() or not any(
        (repo / ".git" / "refs" / "unattended").rglob("*-after")
    )
    assert len(list_snapshots(repo, "run1")) == 3
    for info in list_snapshots(repo, "run1"):  # the commits are in a pack, not loose
        loose = repo / ".git" / "objects" / info.commit[:2] / info.commit[2:]
        assert not loose.exists()
        assert git(repo, "cat-file", "-t", info.commit).strip() == "commit"
    res = restore_snapshot(repo, "run1/0002-after", "two")
    assert git(repo, "show", f"{res.branch}:f.txt") == "2\n"


def test_prune_leaves_another_worktrees_runs(tmp_path: Path) -> None:
    """Two work trees of one repository share refs/unattended/: pruning in one of them
    (as a run ending `done` does) never deletes the other's snapshots, live or not."""
    repo = make_repo(tmp_path / "r")
    other = tmp_path / "other"
    git(repo, "worktree", "add", "-q", "-b", "side", str(other))
    other_git_dir = Path(git(other, "rev-parse", "--absolute-git-dir").strip())
    for run in ("mine-old", "mine-new"):
        write(repo, {"m.txt": run})
        keeper = shooter(repo, run)
        keeper.take(1, "after")
        keeper.flush()
    write(other, {"o.txt": "theirs\n"})
    theirs = shooter(other, "theirs-live", git_dir=other_git_dir)
    theirs.take(1, "after")
    theirs.flush()

    mine = worktree_id(repo / ".git")
    # What a run ending in `repo` does: its archive dropped mine-old (keep_runs); theirs-live
    # is named too, as if run ids collided across work trees: it still is not ours.
    pruned = prune_snapshots(repo, ["mine-new"], mine, only_run_ids=["mine-old", "theirs-live"])
    assert pruned == 1
    runs = {s.run_id for s in list_snapshots(repo)}
    assert runs == {"mine-new", "theirs-live"}
    assert git(repo, "show", "refs/unattended/theirs-live/0001-after:o.txt") == "theirs\n"
    assert worktree_id(repo / ".git") != worktree_id(other_git_dir)


def test_same_second_same_size_edit_is_captured(tmp_path: Path) -> None:
    """git tells an edit within the second of `git add` from no edit only by the index file's
    own mtime (a "racy" entry): the snapshot's copy of the index must keep that mtime."""
    repo = make_repo(tmp_path / "r", {"README.md": "hi\n"})
    time.sleep(1.05 - time.time() % 1)  # just after a second boundary: what follows fits in it
    write(repo, {"a.txt": "a\n"})
    git(repo, "add", "a.txt")
    write(repo, {"a.txt": "b\n"})  # same size, same second: only the racy check sees it
    time.sleep(1.05 - time.time() % 1)  # the copy of the index is made a second later
    shot = snap(repo)
    assert git(repo, "show", f"{shot.commit}:a.txt") == "b\n"


def test_snapshotter_counts_the_commits_between_its_snapshots(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    keeper = shooter(repo)
    _, before = keeper.take(1, "before")
    assert keeper.counted is None
    for n in (1, 2):
        write(repo, {f"n{n}.txt": "x\n", "a.txt": f"{n}\n"})
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"c{n}")
    _, after = keeper.take(1, "after")
    assert keeper.counted == ((before, after), (2, 3))  # 2 commits; n1, n2 and a.txt changed


def test_prune_only_the_runs_named(tmp_path: Path) -> None:
    """A run whose archive is gone (a worker's `git clean -fdx`) keeps its snapshots."""
    repo = make_repo(tmp_path / "r")
    for run in ("gone-archive", "dropped"):
        write(repo, {"m.txt": run})
        keeper = shooter(repo, run)
        keeper.take(1, "after")
        keeper.flush()
    mine = worktree_id(repo / ".git")
    assert prune_snapshots(repo, ["current"], mine, only_run_ids=[]) == 0
    assert prune_snapshots(repo, ["current"], mine, only_run_ids=["dropped"]) == 1
    assert {s.run_id for s in list_snapshots(repo)} == {"gone-archive"}
