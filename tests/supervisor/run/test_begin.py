"""Beginning a run: leftovers of a killed daemon are cleaned (issue 12 item 12)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.supervisor.run.conftest import dead_pid
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.supervisor.run.begin import begin_run


def test_leftover_state_temp_files_of_dead_writers_are_removed_at_start(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    paths.root.mkdir()
    dead = paths.root / f".state.json.{dead_pid()}.tmp"
    mine = paths.root / f".state.json.{os.getpid()}.tmp"
    live = paths.root / f".state.json.{os.getppid()}.tmp"  # a live writer's file stays
    other = paths.root / ".run.log.123.tmp"  # not a state temp file: not ours to judge
    for path in (dead, mine, live, other):
        path.write_text('{"half": ')
    begin_run(paths, Settings(), {}, resume=False)
    assert not dead.exists() and not mine.exists()
    assert live.exists() and other.exists()


def test_a_leftover_temp_file_that_is_a_symlink_is_removed_not_followed(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "project")
    paths.root.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    link = paths.root / f".state.json.{dead_pid()}.tmp"
    link.symlink_to(victim)
    begin_run(paths, Settings(), {}, resume=False)
    assert not link.is_symlink() and victim.read_text() == "keep me\n"
