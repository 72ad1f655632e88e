"""Where the files live: the records in the git dir (each linked worktree its own), what people
read and workers touch in the work tree, and both in ``.unattended/`` without a git dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

from unattended.contracts.paths import RunPaths


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    ident = ["-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=work"]
    done = subprocess.run(
        ["git", *ident, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_records_are_in_each_worktrees_own_git_dir(tmp_path: Path) -> None:
    main = tmp_path / "main"
    main.mkdir()
    _git(main, "init", "-q")
    _git(main, "commit", "-q", "--allow-empty", "-m", "initial")
    _git(main, "worktree", "add", "-q", str(tmp_path / "side"), "-b", "side")
    for top in (main, tmp_path / "side"):
        paths = RunPaths(top)
        git_dir = Path(_git(top, "rev-parse", "--absolute-git-dir"))
        assert paths.records == git_dir / ".unattended"
        assert paths.state.parent == paths.run_log.parent == paths.records
        assert paths.iterations.parent == paths.runs.parent == paths.budget.parent
        assert paths.state_view == top / ".unattended" / "state.json"
        for live in (paths.stop, paths.control, paths.handoff, paths.context_meter, paths.pid):
            assert live.parent == top / ".unattended"
    assert RunPaths(main).records != RunPaths(tmp_path / "side").records


def test_without_a_git_dir_everything_is_in_the_work_tree(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    assert paths.records == paths.root == tmp_path / ".unattended"
    assert paths.state == paths.state_view and paths.run_log == paths.run_log_view
