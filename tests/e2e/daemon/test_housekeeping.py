"""Issue 4's quieter promises, with real processes: the supervisor never runs a destructive git
command nor touches the user's index; caps are read once; each setting says where it came from;
the raw log is capped; old runs and snapshot refs are pruned."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import git, read_state, run_cli
from tests.e2e.daemon.scenario import foreground, run_log, write_toml
from unattended.contracts.paths import RunPaths

# First words of git commands that can lose work or move a user's branch.
DESTRUCTIVE = {
    "reset", "clean", "stash", "checkout", "restore", "rm", "push", "rebase", "merge",
    "commit", "am", "cherry-pick", "revert", "gc", "prune", "filter-branch", "worktree",
}  # fmt: skip
INDEX_WRITERS = {"add", "read-tree", "update-index", "write-tree", "rm", "mv"}


def _git_spy(tmp_path: Path, env: dict[str, str]) -> Path:
    """A `git` first on PATH that logs the supervisor's own calls (workers carry
    UNATTENDED_ITERATION) with their GIT_INDEX_FILE, then runs the real git."""
    real = shutil.which("git", path=env["PATH"])
    assert real
    spy_dir = tmp_path / "git-spy"
    spy_dir.mkdir()
    log = tmp_path / "git-calls.log"
    (spy_dir / "git").write_text(
        "#!/bin/sh\n"
        'if [ -z "$UNATTENDED_ITERATION" ]; then\n'
        f'  printf "%s\\t%s\\n" "${{GIT_INDEX_FILE:-}}" "$*" >> {log}\n'
        "fi\n"
        f'exec {real} "$@"\n'
    )
    (spy_dir / "git").chmod(0o755)
    env["PATH"] = f"{spy_dir}:{env['PATH']}"
    return log


def _subcommand(args: str) -> str:
    words = args.split()
    while words and words[0].startswith("-"):
        words = words[2:] if words[0] in ("-C", "-c") else words[1:]
    return words[0] if words else ""


def test_supervisor_never_runs_destructive_git_nor_touches_the_index(
    project: Path, hermetic_env: dict[str, str], fake_claude, tmp_path: Path
) -> None:
    (project / "README.md").write_text("staged by the user\n")
    git(project, "add", "README.md", env=hermetic_env)
    (project / "draft.txt").write_text("the user's untracked draft\n")
    staged = git(project, "diff", "--cached")
    user_branches = git(project, "for-each-ref", "refs/heads")
    fake_claude.script(
        [
            [{"do": "write", "file": "notes.md", "content": "x\n"}, "text"],
            [{"do": "run", "cmd": "echo more >> draft.txt"}, "done"],
        ]
    )
    calls_log = _git_spy(tmp_path, hermetic_env)
    proc = foreground(project, hermetic_env, "--allow-dirty")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = [line.split("\t", 1) for line in calls_log.read_text().splitlines()]
    assert len(calls) > 5  # the spy saw the supervisor's git evidence and snapshots
    for index_file, args in calls:
        sub = _subcommand(args)
        assert sub not in DESTRUCTIVE, args
        if sub in INDEX_WRITERS:
            assert index_file and not index_file.endswith(".git/index"), (index_file, args)
    # The user's staged change, branches and stash are as they were.
    assert git(project, "diff", "--cached") == staged
    refs = git(project, "for-each-ref", "--format=%(refname)", "refs/heads").splitlines()
    assert refs == [line.split()[-1] for line in user_branches.splitlines()]
    assert git(project, "stash", "list") == ""


def test_caps_are_read_once_a_worker_editing_the_toml_changes_nothing(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, gutter_iterations=2)
    loosen = "gutter_iterations = 50\nmax_iterations = 1\n"
    fake_claude.script(
        [[{"do": "write", "file": "unattended.toml", "content": loosen}, "text"], ["text"]]
    )
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    state = read_state(project)
    assert state["iteration"] == 3  # one change, then stuck after the saved 2, not 50 or 1
    assert state["settings"]["gutter_iterations"] == 2
    assert state["settings"]["max_iterations"] == 200


def test_status_json_shows_effective_settings_and_their_sources(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, gutter_iterations=4, hours=3)
    fake_claude.script([["commit", "done"]])
    proc = foreground(project, hermetic_env, "--hours", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(run_cli(["status", "--json"], hermetic_env, cwd=project).stdout)
    settings, sources = data["settings"], data["settings_sources"]
    assert settings["hours"] == 2 and sources["hours"] == "cli"  # CLI beats the file
    assert settings["gutter_iterations"] == 4 and sources["gutter_iterations"] == "unattended.toml"
    assert settings["crash_backoff_s"] == 5 and sources["crash_backoff_s"] == "default"
    assert sources["grace_seconds"] == "cli"


def test_raw_iteration_log_is_capped_keeping_head_and_tail(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, max_iteration_log_mb=1)
    fake_claude.script([[{"do": "spew", "mb": 4}, "commit", "done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the stream was parsed in full
    raw = RunPaths(project).iterations / "0001.jsonl"
    assert raw.stat().st_size <= 1024 * 1024 + 4096
    lines = raw.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "system"  # the head
    assert any('"unattended_truncated"' in line for line in lines)
    assert '"type": "result"' in lines[-1] or '"type":"result"' in lines[-1]  # the tail


def test_old_runs_and_their_snapshots_are_pruned(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, keep_runs=1)
    fake_claude.script([["commit", "done"]])
    run_ids = []
    for _ in range(3):
        proc = foreground(project, hermetic_env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        run_ids.append(read_state(project)["run_id"])
    archived = sorted(p.name for p in (RunPaths(project).runs).iterdir())
    assert archived == run_ids[1:2]  # keep_runs archived runs; the oldest went
    refs = git(project, "for-each-ref", "--format=%(refname)", "refs/unattended/").splitlines()
    # A done run prunes like any other: the oldest run went, the kept archived run stays.
    assert {ref.split("/")[2] for ref in refs} == set(run_ids[1:])
    assert "pruned" in run_log(project)
    # A run that does not end done keeps the archived runs' snapshots.
    fake_claude.script([["commit"]])
    proc = foreground(project, hermetic_env, "--max-iterations", "1")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    refs = git(project, "for-each-ref", "--format=%(refname)", "refs/unattended/").splitlines()
    assert any(f"/{run_ids[-1]}/" in ref for ref in refs)
