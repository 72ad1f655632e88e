"""Preflight rules (issue 4 "Preflight", issue 3 §1): every check, its order and its message."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from unattended.contracts.settings import Settings
from unattended.safety.preflight import PreflightFacts, failures, preflight, relevant_dirty_paths

GOOD = PreflightFacts(
    in_git_repo=True,
    branch="night-work",
    detached=False,
    dirty_paths=(),
    prompt_available=True,
    claude_bin_resolved="/usr/local/bin/claude",
    claude_bin_executable=True,
    state_dir_writable=True,
    is_root=False,
    is_sandbox_env=False,
    auth_source="ANTHROPIC_API_KEY is set in the environment",
)


def checks(requested: str | None = None, settings: Settings | None = None, **changes: Any) -> dict:
    """The checks by name, for GOOD facts with ``changes``; ``requested`` is ``--branch``."""
    result = preflight(replace(GOOD, **changes), settings or Settings(), requested)
    return {check.name: check for check in result}


def test_all_pass_in_a_fixed_order() -> None:
    result = preflight(GOOD, Settings(), None)
    assert [c.name for c in result] == [
        "git",
        "branch",
        "dirty",
        "permissions",
        "prompt",
        "claude",
        "auth",
        "state-dir",
        "symlinks",
    ]
    assert failures(result) == []
    assert all("\n" not in c.message for c in result)


@pytest.mark.parametrize("branch", ["main", "master", "develop", "trunk"])
def test_default_protected_branches_refused(branch: str) -> None:
    check = checks(None, branch=branch)["branch"]
    assert not check.ok
    assert check.message.startswith(f"refusing to work on protected branch {branch}")
    assert "--branch NAME" in check.message


def test_protected_branches_setting_adds_to_the_defaults() -> None:
    settings = Settings(protected_branches=["release"])
    assert not checks(settings=settings, branch="release")["branch"].ok
    assert not checks(settings=settings, branch="main")["branch"].ok


def test_branch_option_lifts_the_protection_by_moving_to_another_branch() -> None:
    check = checks("night-1", branch="main")["branch"]
    assert check.ok and "night-1" in check.message
    refused = checks("master", branch="main")["branch"]
    assert not refused.ok and "--branch master is a protected branch" in refused.message


def test_branch_from_settings() -> None:
    assert checks(settings=Settings(branch="night"), branch="main")["branch"].ok


def test_detached_head_refused() -> None:
    check = checks(branch=None, detached=True)["branch"]
    assert not check.ok and check.message.startswith("detached HEAD")


def test_no_branch_is_not_called_detached() -> None:
    check = checks(branch=None)["branch"]
    assert not check.ok and not check.message.startswith("detached")


def test_dirty_tree_refused_listing_five_paths() -> None:
    dirty = tuple(f"src/f{i}.py" for i in range(7))
    check = checks(dirty_paths=dirty)["dirty"]
    assert not check.ok
    first, *listed = check.message.splitlines()
    assert first == (
        "the work tree has 7 uncommitted change(s): commit or stash them, or pass --allow-dirty"
    )
    assert listed == [*(f"  src/f{i}.py" for i in range(5)), "  … and 2 more"]


def test_dirty_tree_whitelist_and_state_dir() -> None:
    dirty = (
        "PROMPT.md",
        "unattended.toml",
        ".unattended/state.json",
        ".unattended/",
        "./PROMPT.md",
    )
    assert checks(dirty_paths=dirty)["dirty"].ok
    assert relevant_dirty_paths(dirty, Settings().dirty_whitelist) == ()
    custom = Settings(dirty_whitelist=["*.log", "notes/*"])
    assert relevant_dirty_paths(
        ("a.log", "deep/b.log", "notes/x", "notes/y/z", "PROMPT.md"), custom.dirty_whitelist
    ) == ("PROMPT.md",)  # a custom list replaces the default one; "*" crosses "/" like fnmatch


def test_allow_dirty() -> None:
    check = checks(settings=Settings(allow_dirty=True), dirty_paths=("x.py",))["dirty"]
    assert check.ok and "allowed by --allow-dirty" in check.message


def test_switching_branch_with_a_dirty_tree_is_refused_even_with_allow_dirty() -> None:
    settings = Settings(allow_dirty=True)
    check = checks("night", settings=settings, dirty_paths=("x.py",))["dirty"]
    assert not check.ok and check.message.startswith("cannot switch to branch night")
    # naming the branch we are already on is not a switch
    assert checks("night-work", settings=settings, dirty_paths=("x.py",))["dirty"].ok


def test_not_a_git_repo_skips_the_git_dependent_checks() -> None:
    result = checks(in_git_repo=False, branch=None)
    assert not result["git"].ok and "git init" in result["git"].message
    assert "branch" not in result and "dirty" not in result


def test_root_with_bypass_refused_unless_sandbox_or_allowed_tools() -> None:
    check = checks(is_root=True)["permissions"]
    assert not check.ok
    assert check.message == (
        "running as root, claude refuses bypassPermissions: use --allowed-tools, "
        "or set IS_SANDBOX=1 inside a container"
    )
    assert checks(is_root=True, is_sandbox_env=True)["permissions"].ok
    tools = checks(settings=Settings(allowed_tools="Bash"), is_root=True)["permissions"]
    assert tools.ok and tools.message == "permission mode default"
    assert checks(settings=Settings(permission_mode="acceptEdits"), is_root=True)["permissions"].ok


def test_prompt_missing() -> None:
    check = checks(prompt_available=False)["prompt"]
    assert not check.ok
    assert "--prompt TEXT" in check.message and "PROMPT.md" in check.message


def test_claude_binary_missing_or_not_executable() -> None:
    missing = checks(claude_bin_resolved=None, claude_bin_executable=False)["claude"]
    assert not missing.ok and missing.message.startswith("claude binary not found: 'claude'")
    not_exec = checks(claude_bin_executable=False)["claude"]
    assert not not_exec.ok and "/usr/local/bin/claude" in not_exec.message


def test_state_dir_not_writable() -> None:
    check = checks(state_dir_writable=False)["state-dir"]
    assert not check.ok and check.message.startswith(".unattended/ is not writable")


def test_every_failure_is_reported_for_dry_run() -> None:
    result = preflight(
        replace(
            GOOD,
            branch="main",
            dirty_paths=("a",),
            prompt_available=False,
            claude_bin_resolved=None,
            claude_bin_executable=False,
            state_dir_writable=False,
            is_root=True,
            auth_source=None,
        ),
        Settings(),
        None,
    )
    assert [c.name for c in failures(result)] == [
        "branch",
        "dirty",
        "permissions",
        "prompt",
        "claude",
        "auth",
        "state-dir",
    ]


def test_no_credentials_is_refused_with_the_fix() -> None:
    check = checks(auth_source=None)["auth"]
    assert not check.ok and "\n" not in check.message
    assert check.message.startswith("no Claude credentials found")
    assert "export ANTHROPIC_API_KEY=" in check.message and "/login" in check.message
    assert checks()["auth"].ok


def test_missing_prompt_file_is_named() -> None:
    settings = Settings(prompt_file="missing.md")
    check = checks(settings=settings, prompt_available=False)["prompt"]
    assert not check.ok and check.message.startswith("prompt file not found: missing.md")


def test_absolute_claude_bin_is_not_found_rather_than_not_on_path() -> None:
    settings = Settings(claude_bin="/opt/nowhere/claude")
    check = checks(settings=settings, claude_bin_resolved=None, claude_bin_executable=False)
    message = check["claude"].message
    assert message.startswith("claude binary not found: /opt/nowhere/claude does not exist")
    assert "PATH" not in message


def test_a_tracked_symlink_in_the_state_dir_is_refused_with_the_fix() -> None:
    facts = dict(
        state_symlinks=(".unattended/run.log", ".unattended/iterations"),
        tracked_state_symlinks=(".unattended/run.log",),
    )
    check = checks(**facts)["symlinks"]
    assert not check.ok and "\n" not in check.message
    assert check.message == (
        ".unattended/run.log is a symlink tracked by git (and 1 more): unattended never writes "
        "through a symlink; remove it (git rm --cached .unattended/run.log && rm "
        ".unattended/run.log) and start again"
    )


def test_a_planted_symlink_is_refused_too() -> None:
    check = checks(state_symlinks=(".unattended",))["symlinks"]
    assert not check.ok
    assert check.message.startswith(".unattended is a symlink: unattended never writes")
    assert "(rm .unattended)" in check.message
