"""The tree watch with real inotify: what it reports, and when it says it may have missed some."""

from __future__ import annotations

from pathlib import Path

import pytest

from unattended.platform_adapters import fswatch
from unattended.platform_adapters.fswatch import TreeWatch

pytestmark = pytest.mark.skipif(not fswatch.available(), reason="no inotify on this OS")


def tree(tmp_path: Path) -> Path:
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "skipped").mkdir()
    (top / "a" / "b" / "f.txt").write_text("f\n")
    return top


def started(top: Path, skip: tuple[str, ...] = ("skipped",)) -> TreeWatch:
    watch = TreeWatch.start(top, skip)
    assert watch is not None
    return watch


def test_edits_creations_and_removals_are_named_relative_to_the_top(tmp_path: Path) -> None:
    top = tree(tmp_path)
    watch = started(top)
    try:
        (top / "a" / "b" / "f.txt").write_text("edited\n")
        (top / "new.txt").write_text("n\n")
        (top / "a" / "gone").mkdir()
        (top / "a" / "gone").rmdir()
        (top / "skipped" / "unseen.txt").write_text("x\n")
        changes = watch.drain()
        assert changes.complete
        assert changes.paths == {"a/b/f.txt", "new.txt", "a/gone"}
        assert changes.new_dirs == {"a/gone"}
        assert watch.drain().paths == set()  # each change is told once
    finally:
        watch.close()


def test_a_new_directory_is_watched_once_added(tmp_path: Path) -> None:
    top = tree(tmp_path)
    watch = started(top)
    try:
        (top / "fresh" / "deep").mkdir(parents=True)
        (top / "fresh" / "deep" / "early.txt").write_text("before the watch\n")
        assert watch.drain().new_dirs == {"fresh"}  # what is inside is the caller's to look at
        assert watch.add_tree("fresh")
        (top / "fresh" / "deep" / "late.txt").write_text("after\n")
        assert watch.drain().paths == {"fresh/deep/late.txt"}
    finally:
        watch.close()


def test_a_moved_directory_breaks_the_watch(tmp_path: Path) -> None:
    top = tree(tmp_path)
    watch = started(top)
    try:
        (top / "a").rename(top / "renamed")  # the watches below it would name the old paths
        assert not watch.drain().complete
        assert watch.broken
    finally:
        watch.close()


def test_no_symlink_is_followed_and_a_nested_repository_refuses(tmp_path: Path) -> None:
    top = tree(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (top / "link").symlink_to(outside, target_is_directory=True)
    watch = started(top)
    try:
        (outside / "x.txt").write_text("not ours\n")
        assert watch.drain().paths == set()
        assert not watch.is_watched("link")
    finally:
        watch.close()
    (top / "a" / ".git").mkdir()
    assert TreeWatch.start(top, ("skipped",)) is None
