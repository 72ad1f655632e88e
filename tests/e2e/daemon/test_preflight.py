"""Preflight through the real CLI: protected branches, dirty trees, detached HEAD, --branch,
--dry-run. A refusal is exit 2 with a clear message, and nothing is spawned or written."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, read_state, run_cli
from tests.e2e.daemon.scenario import FAST, branch, foreground, head, write_toml


def _refused(project: Path, env: dict[str, str], fake_claude, *args: str) -> str:  # noqa: ANN001
    proc = run_cli(["start", *FAST, *args], env, cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("unattended: ") and "Traceback" not in proc.stderr
    assert fake_claude.calls() == []
    assert not (project / ".unattended" / "state.json").exists()
    return proc.stderr


def test_protected_branches_are_refused(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    for name in ("main", "master", "develop", "trunk"):
        git(project, "switch", "-q", "-c", name, env=hermetic_env)
        err = _refused(project, hermetic_env, fake_claude)
        assert f"protected branch {name}" in err and "--branch NAME" in err
        git(project, "switch", "-q", "work", env=hermetic_env)
    # The setting adds branches to the defaults.
    write_toml(project, protected_branches=["release"])
    git(project, "switch", "-q", "-c", "release", env=hermetic_env)
    assert "protected branch release" in _refused(project, hermetic_env, fake_claude)
    # --branch naming a protected branch is refused too.
    git(project, "switch", "-q", "work", env=hermetic_env)
    assert "--branch main is a protected branch" in _refused(
        project, hermetic_env, fake_claude, "--branch", "main"
    )


def test_dirty_tree_is_refused_listing_paths(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    (project / "README.md").write_text("changed\n")
    for i in range(6):
        (project / f"new{i}.txt").write_text("x\n")
    # Never dirty: the prompt, the settings file, the state dir.
    (project / "PROMPT.md").write_text("Another task.\n")
    write_toml(project, hours=1)
    (project / ".unattended").mkdir()
    (project / ".unattended" / "leftover").write_text("x")
    err = _refused(project, hermetic_env, fake_claude)
    first, *listed = err.strip().splitlines()
    assert "7 uncommitted change(s)" in first and "--allow-dirty" in first
    assert "README.md" in listed[0]
    assert len(listed) == 6 and "and 2 more" in listed[-1]
    assert not any("PROMPT.md" in line or "unattended" in line for line in listed)

    dry = run_cli(["start", *FAST, "--dry-run", "--allow-dirty"], hermetic_env, cwd=project)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "allowed by --allow-dirty" in dry.stdout


def test_whitelisted_changes_only_are_not_dirty(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    write_toml(project, dirty_whitelist=["PROMPT.md", "unattended.toml", "notes/*"])
    (project / "PROMPT.md").write_text("Changed task.\n")
    (project / "notes").mkdir()
    (project / "notes" / "todo.md").write_text("x\n")
    git(project, "add", "PROMPT.md", env=hermetic_env)  # staged, still whitelisted
    fake_claude.script([["commit", "done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_detached_head_is_refused(project: Path, hermetic_env: dict[str, str], fake_claude) -> None:
    git(project, "switch", "-q", "--detach", "HEAD", env=hermetic_env)
    err = _refused(project, hermetic_env, fake_claude)
    assert "detached HEAD" in err


def test_branch_option_creates_and_checks_out(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    git(project, "switch", "-q", "-c", "main", env=hermetic_env)
    main_head = head(project)
    fake_claude.script([["commit", "done"]])
    proc = foreground(project, hermetic_env, "--branch", "night-work")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert branch(project) == "night-work"
    assert git(project, "rev-parse", "main") == main_head  # the protected branch is untouched
    assert git(project, "rev-parse", "night-work~1") == main_head
    assert read_state(project)["status"] == "done"
    # An existing branch is checked out, not recreated.
    git(project, "switch", "-q", "main", env=hermetic_env)
    night = git(project, "rev-parse", "night-work")
    proc = foreground(project, hermetic_env, "--branch", "night-work")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert branch(project) == "night-work"
    assert git(project, "rev-parse", "night-work~1") == night


def test_branch_option_refuses_a_dirty_tree(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    git(project, "switch", "-q", "-c", "main", env=hermetic_env)
    (project / "README.md").write_text("changed\n")
    err = _refused(project, hermetic_env, fake_claude, "--branch", "night", "--allow-dirty")
    assert "cannot switch to branch night" in err and "README.md" in err
    assert branch(project) == "main"
    assert git(project, "branch", "--list", "night") == ""


def test_dry_run_prints_checks_and_the_worker_command(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    proc = run_cli(["start", *FAST, "--dry-run", "--model", "opus"], hermetic_env, cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for name in ("git", "branch", "dirty", "permissions", "prompt", "claude", "state-dir"):
        assert f"[ok  ] {name}:" in out, out
    command = next(line for line in out.splitlines() if line.startswith("worker command: "))
    assert str(fake_claude.bin) in command
    assert " -p --output-format stream-json --verbose" in command
    assert "Fix the tests" not in command and "UNATTENDED_DONE" not in command
    assert "worker stdin: the prompt + protocol (" in out
    assert "--output-format stream-json --verbose" in command
    assert "--permission-mode default --allowed-tools Bash,Write --model opus" in command
    assert f"worker cwd: {project}" in out
    assert fake_claude.calls() == []
    assert not (project / ".unattended" / "state.json").exists()


def test_dry_run_reports_failures_with_exit_2(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    git(project, "switch", "-q", "-c", "master", env=hermetic_env)
    (project / "PROMPT.md").unlink()
    # As root without IS_SANDBOX, the default bypass mode is refused (no --allowed-tools here).
    proc = run_cli(["start", "--dry-run"], hermetic_env, cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout
    assert "[FAIL] branch: refusing to work on protected branch master" in out
    assert "[FAIL] prompt:" in out
    assert "[FAIL] permissions: running as root" in out
    assert "[ok  ] claude:" in out and "worker command: " in out
    assert "--permission-mode bypassPermissions" in out
    assert fake_claude.calls() == []


def test_out_of_range_numbers_are_refused_in_one_line(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    """Issue 13 §9: `--hours inf` or 1e10 once passed validation and killed the daemon."""
    for value in ("inf", "1e10", "1e300", "nan"):
        err = _refused(project, hermetic_env, fake_claude, "--hours", value)
        assert "invalid setting hours (from cli)" in err and len(err.strip().splitlines()) == 1
    write_toml(project, max_iterations=10**9)
    err = _refused(project, hermetic_env, fake_claude)
    assert "invalid setting max_iterations (from unattended.toml)" in err


def test_git_missing_from_path_is_one_line(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    env = {**hermetic_env, "PATH": str(fake_claude.bin_dir)}
    err = _refused(project, env, fake_claude)
    assert "git is not installed or not on PATH" in err and len(err.strip().splitlines()) == 1


def test_dry_run_refusal_first_line_also_goes_to_stderr(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    """Issue 13 §12: the failures were on stdout only."""
    git(project, "switch", "-q", "-c", "main", env=hermetic_env)
    proc = run_cli(["start", *FAST, "--dry-run"], hermetic_env, cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "[FAIL] branch: " in proc.stdout
    assert proc.stderr.startswith("unattended: refusing to work on protected branch main")
    assert len(proc.stderr.splitlines()) == 1
    (project / "PROMPT.md").write_text("   \n")  # a prompt that cannot be used fails too
    git(project, "switch", "-q", "work", env=hermetic_env)
    proc = run_cli(["start", *FAST, "--dry-run", "--allow-dirty"], hermetic_env, cwd=project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("unattended: the prompt (") and "is empty" in proc.stderr


def test_no_credentials_is_refused_before_anything_starts(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    env = {k: v for k, v in hermetic_env.items() if k != "ANTHROPIC_API_KEY"}
    err = _refused(project, env, fake_claude)
    assert err.count("\n") == 1 and err.startswith("unattended: no Claude credentials found")
    assert "export ANTHROPIC_API_KEY=" in err
    # A logged-in CLI is enough (its file is looked at, never read out).
    secret = "sk-ant-oat01-never-shown"
    creds = Path(env["HOME"]) / ".claude" / ".credentials.json"
    creds.parent.mkdir()
    creds.write_text(json.dumps({"claudeAiOauth": {"accessToken": secret}}))
    dry = run_cli(["start", *FAST, "--dry-run"], env, cwd=project)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"[ok  ] auth: logged in ({creds} present)" in dry.stdout
    assert secret not in dry.stdout + dry.stderr


def test_missing_prompt_file_and_absolute_claude_bin_are_named(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    err = _refused(project, hermetic_env, fake_claude, "--prompt-file", "missing.md")
    assert "prompt file not found: missing.md" in err
    err = _refused(project, hermetic_env, fake_claude, "--claude-bin", "/nonexistent/claude")
    assert "/nonexistent/claude does not exist" in err and "PATH" not in err
