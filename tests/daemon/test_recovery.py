"""Work preservation with real processes: a worker that wipes uncommitted work costs one iteration.

The worker runs `git reset --hard` and `git clean -fdx` on the previous iteration's uncommitted
files (and on an ignored `.env`); the daemon's before/after snapshots must let
`unattended recover` bring every file back onto a new branch, without touching the user's
branch, index or work tree.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import git, read_state, run_cli
from tests.daemon.scenario import branch, foreground, head, run_log

WIPE = "git reset --hard -q && git clean -fdxq"


def test_reset_and_clean_lose_nothing(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    (project / ".gitignore").write_text(".env\n")
    git(project, "add", ".gitignore", env=hermetic_env)
    git(project, "commit", "-q", "-m", "ignore .env", env=hermetic_env)
    (project / ".env").write_text("API_TOKEN=s3cret\n")
    user_head = head(project)
    fake_claude.script(
        [
            # iteration 1: uncommitted work only (a changed tracked file, new files)
            [
                {"do": "write", "file": "README.md", "content": "hello, edited\n"},
                {"do": "write", "file": "src/feature.py", "content": "VALUE = 42\n"},
                {"do": "write", "file": "notes/plan.md", "content": "1. build\n"},
                "text",
            ],
            # iteration 2: wipes it all, including the ignored .env and .unattended/
            [{"do": "run", "cmd": WIPE}, "done"],
        ]
    )
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The worker really destroyed the work.
    assert not (project / ".env").exists()
    assert not (project / "src").exists()
    assert (project / "README.md").read_text() == "hello\n"
    state = read_state(project)  # the daemon rewrote its state after the wipe
    assert state["status"] == "done" and state["iteration"] == 2
    assert ".unattended/ was deleted" in run_log(project)
    run_id = state["run_id"]

    listing = run_cli(["recover", "--list"], hermetic_env, cwd=project)
    assert listing.returncode == 0, listing.stderr
    for leaf in ("0001-before", "0001-after", "0002-before", "0002-after"):
        assert f"{run_id}/{leaf}" in listing.stdout, listing.stdout

    ref = f"{run_id}/0002-before"
    restored = run_cli(
        ["recover", "--restore", ref, "--to-branch", "rescued", "--with-ignored"],
        hermetic_env,
        cwd=project,
    )
    assert restored.returncode == 0, restored.stderr
    assert "git switch rescued" in restored.stdout
    # Created, not checked out; the user's branch did not move.
    assert branch(project) == "work" and head(project) == user_head
    assert git(project, "rev-parse", "--verify", "rescued") != user_head
    assert git(project, "show", "rescued:README.md") == "hello, edited"
    assert git(project, "show", "rescued:src/feature.py") == "VALUE = 42"
    assert git(project, "show", "rescued:notes/plan.md") == "1. build"
    # The secret is never committed to the branch, but --with-ignored writes it back.
    files = git(project, "ls-tree", "-r", "--name-only", "rescued").splitlines()
    assert ".env" not in files
    assert (project / ".env").read_text() == "API_TOKEN=s3cret\n"
    assert git(project, "stash", "list") == ""


def test_restore_without_ignored_holds_secrets_back(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    (project / ".env.local").write_text("DB=postgres://x\n")  # untracked: not ignored yet
    (project / ".gitignore").write_text(".env*\n")
    git(project, "add", ".gitignore", env=hermetic_env)
    git(project, "commit", "-q", "-m", "ignore env", env=hermetic_env)
    fake_claude.script([[{"do": "run", "cmd": WIPE}, "done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (project / ".env.local").exists()
    run_id = read_state(project)["run_id"]
    restored = run_cli(
        ["recover", "--restore", f"{run_id}/0001-before", "--to-branch", "night"],
        hermetic_env,
        cwd=project,
    )
    assert restored.returncode == 0, restored.stderr
    assert ".env.local" in restored.stdout and "--with-ignored" in restored.stdout
    assert not (project / ".env.local").exists()  # held back
    # An existing branch is never overwritten.
    again = run_cli(
        ["recover", "--restore", f"{run_id}/0001-before", "--to-branch", "night"],
        hermetic_env,
        cwd=project,
    )
    assert again.returncode == 2 and "night" in again.stderr
