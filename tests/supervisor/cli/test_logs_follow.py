"""`logs -f` follows run.log across both kinds of rotation, as `tail -F` does (issue 14 item 8),
and commands find the project at the work tree's top (item 15)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from unattended.supervisor.cli.logs import follow_file
from unattended.supervisor.git.top import project_top, work_tree_top


def _collect(path: Path, steps: list, expected: int) -> list[str]:
    """Follow ``path`` in a thread while ``steps`` change the file; the lines seen."""
    seen: list[str] = []
    done = threading.Event()

    def follow() -> None:
        for line in follow_file(path, keep_going=lambda: not done.is_set(), from_end=True):
            seen.append(line)

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        for step, wait_for in steps:
            step()
            deadline = 200
            while len(seen) < wait_for and deadline:
                threading.Event().wait(0.05)
                deadline -= 1
    finally:
        done.set()
        thread.join(10)
    assert not thread.is_alive()
    return seen[:expected]


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def test_follows_copytruncate(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("old line 1\nold line 2 that is long enough\n")

    def started() -> None:
        threading.Event().wait(0.5)  # let the follower reach the end
        _append(log, "before rotation\n")

    def copytruncate() -> None:
        (tmp_path / "run.log.1").write_bytes(log.read_bytes())
        os.truncate(log, 0)
        threading.Event().wait(0.5)
        _append(log, "after\n")

    seen = _collect(log, [(started, 1), (copytruncate, 2)], 2)
    assert seen == ["before rotation", "after"]


def test_follows_a_moved_and_recreated_file(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("")

    def started() -> None:
        threading.Event().wait(0.5)
        _append(log, "one\n")

    def rotate() -> None:
        log.rename(tmp_path / "run.log.1")
        log.write_text("two\n")

    assert _collect(log, [(started, 1), (rotate, 2)], 2) == ["one", "two"]


def test_work_tree_top(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src" / "deep").mkdir(parents=True)
    assert work_tree_top(repo / "src" / "deep") == repo.resolve()
    assert work_tree_top(repo / ".git") == repo.resolve()
    linked = repo / "src" / "linked"
    linked.mkdir()
    (linked / ".git").write_text("gitdir: /elsewhere\n")  # a linked work tree or submodule
    assert work_tree_top(linked) == linked.resolve()
    plain = tmp_path / "plain"
    plain.mkdir()
    assert project_top(plain) == plain.resolve()
