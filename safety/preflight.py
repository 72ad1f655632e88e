"""Checks before the first worker, from facts gathered elsewhere (git, filesystem, environment).

Every check is returned, passed or not, so ``start --dry-run`` can print them all; ``start``
refuses (exit 2) on the first failure. A check's message is one line saying what is wrong and
how to fix it; a dirty-tree refusal lists up to five paths on the lines after.

Checks that depend on being in a git work tree (branch, dirty tree) are skipped outside one:
the "git" failure already says what to do.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from unattended.contracts.names import STATE_DIR_NAME as STATE_DIR
from unattended.contracts.settings import Settings

MAX_LISTED_PATHS = 5

NO_AUTH_MESSAGE = (
    "no Claude credentials found (no ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN or "
    "CLAUDE_CODE_OAUTH_TOKEN, no logged-in claude, no apiKeyHelper, no "
    "CLAUDE_CODE_USE_BEDROCK/VERTEX/FOUNDRY)"
)
NO_AUTH_FIX = (
    "export ANTHROPIC_API_KEY=... (or CLAUDE_CODE_OAUTH_TOKEN from `claude setup-token`), "
    "or run `claude` once and /login"
)


@dataclass(frozen=True)
class PreflightFacts:
    in_git_repo: bool
    branch: str | None  # None when detached or unborn
    detached: bool
    dirty_paths: tuple[str, ...]  # paths from `git status --porcelain`, unfiltered
    prompt_available: bool
    claude_bin_resolved: str | None  # absolute path, None when not found
    claude_bin_executable: bool
    state_dir_writable: bool
    is_root: bool
    is_sandbox_env: bool  # IS_SANDBOX=1 in the environment the workers inherit
    auth_source: str | None  # where the CLI would find a credential (no value), None: nowhere
    # Symlinks where the daemon writes (.unattended/ and its entries, the lock), as shown to
    # the user, and those of them git tracks (a hostile clone): the daemon never writes
    # through one, so the run is refused before it starts.
    state_symlinks: tuple[str, ...] = ()
    tracked_state_symlinks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str  # one line (plus listed paths for the dirty tree)


def _whitelisted(path: str, patterns: Iterable[str]) -> bool:
    """A glob without '/' matches the file name anywhere; with '/', the whole path."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path.rstrip("/"), pattern):
            return True
        if "/" not in pattern and fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def relevant_dirty_paths(paths: Sequence[str], whitelist: Iterable[str]) -> tuple[str, ...]:
    """Dirty paths that count: not under ``.unattended/`` and not matching the whitelist."""
    patterns = list(whitelist)
    kept: list[str] = []
    for raw in paths:
        path = raw.strip().removeprefix("./")
        if not path or path == STATE_DIR or path.startswith(STATE_DIR + "/"):
            continue
        if not _whitelisted(path, patterns):
            kept.append(path)
    return tuple(kept)


def _branch_check(facts: PreflightFacts, settings: Settings, requested: str | None) -> Check:
    protected = settings.all_protected_branches()
    if requested is not None:
        if requested in protected:
            return Check(
                "branch",
                False,
                f"--branch {requested} is a protected branch: choose another name "
                f"(protected: {', '.join(protected)})",
            )
        return Check("branch", True, f"will work on branch {requested} (created from HEAD if new)")
    if facts.detached:
        return Check(
            "branch",
            False,
            "detached HEAD: check out a branch first (git switch -c NAME), or pass --branch NAME",
        )
    if not facts.branch:
        return Check(
            "branch",
            False,
            "no branch checked out: make a first commit on a working branch "
            "(git switch -c NAME), or pass --branch NAME",
        )
    if facts.branch in protected:
        return Check(
            "branch",
            False,
            f"refusing to work on protected branch {facts.branch}: pass --branch NAME to work "
            f"on a new branch created from HEAD, or switch to a working branch",
        )
    return Check("branch", True, f"on branch {facts.branch}")


def _dirty_check(facts: PreflightFacts, settings: Settings, requested: str | None) -> Check:
    dirty = relevant_dirty_paths(facts.dirty_paths, settings.dirty_whitelist)
    if not dirty:
        return Check("dirty", True, "work tree clean")
    switching = requested is not None and requested != facts.branch
    if settings.allow_dirty and not switching:
        return Check("dirty", True, f"{len(dirty)} uncommitted change(s), allowed by --allow-dirty")
    listed = "\n".join(f"  {path}" for path in dirty[:MAX_LISTED_PATHS])
    more = len(dirty) - MAX_LISTED_PATHS
    if more > 0:
        listed += f"\n  … and {more} more"
    if switching:
        head = (
            f"cannot switch to branch {requested}: the work tree has {len(dirty)} uncommitted "
            f"change(s); commit or stash them first"
        )
    else:
        head = (
            f"the work tree has {len(dirty)} uncommitted change(s): commit or stash them, "
            f"or pass --allow-dirty"
        )
    return Check("dirty", False, f"{head}\n{listed}")


def _permissions_check(facts: PreflightFacts, settings: Settings) -> Check:
    mode = settings.effective_permission_mode()
    if facts.is_root and mode == "bypassPermissions" and not facts.is_sandbox_env:
        return Check(
            "permissions",
            False,
            "running as root, claude refuses bypassPermissions: use --allowed-tools, "
            "or set IS_SANDBOX=1 inside a container",
        )
    return Check("permissions", True, f"permission mode {mode}")


def _claude_check(facts: PreflightFacts, settings: Settings) -> Check:
    if facts.claude_bin_resolved is None and "/" in settings.claude_bin.replace("\\", "/"):
        return Check(
            "claude",
            False,
            f"claude binary not found: {settings.claude_bin} does not exist; install Claude "
            f"Code there or point claude_bin at it",
        )
    if facts.claude_bin_resolved is None:
        return Check(
            "claude",
            False,
            f"claude binary not found: {settings.claude_bin!r} is not on PATH; install Claude "
            f"Code (npm install -g @anthropic-ai/claude-code) or set claude_bin",
        )
    if not facts.claude_bin_executable:
        return Check(
            "claude",
            False,
            f"claude binary is not executable: {facts.claude_bin_resolved}; "
            f"chmod +x it or set claude_bin",
        )
    return Check("claude", True, f"claude at {facts.claude_bin_resolved}")


def _auth_check(facts: PreflightFacts) -> Check:
    if facts.auth_source is None:
        return Check("auth", False, f"{NO_AUTH_MESSAGE}: {NO_AUTH_FIX}")
    return Check("auth", True, facts.auth_source)


def _symlink_check(facts: PreflightFacts) -> Check:
    links = list(dict.fromkeys([*facts.tracked_state_symlinks, *facts.state_symlinks]))
    if not links:
        return Check("symlinks", True, f"no symlink in {STATE_DIR}/")
    first = links[0]
    more = f" (and {len(links) - 1} more)" if len(links) > 1 else ""
    if first in facts.tracked_state_symlinks:
        fix = f"git rm --cached {first} && rm {first}"
        what = "a symlink tracked by git"
    else:
        fix, what = f"rm {first}", "a symlink"
    return Check(
        "symlinks",
        False,
        f"{first} is {what}{more}: unattended never writes through a symlink; "
        f"remove it ({fix}) and start again",
    )


def preflight(
    facts: PreflightFacts, settings: Settings, branch_requested: str | None
) -> list[Check]:
    """Every applicable check, in a fixed order: git, branch, dirty, permissions, prompt,
    claude, auth, state-dir, symlinks. ``branch_requested`` falls back to ``settings.branch``."""
    requested = branch_requested if branch_requested is not None else settings.branch
    checks: list[Check] = []
    if not facts.in_git_repo:
        checks.append(
            Check("git", False, "not a git work tree: run git init (and commit) in the project")
        )
    else:
        checks.append(Check("git", True, "git work tree"))
        checks.append(_branch_check(facts, settings, requested))
        checks.append(_dirty_check(facts, settings, requested))
    checks.append(_permissions_check(facts, settings))
    if facts.prompt_available:
        checks.append(Check("prompt", True, "prompt found"))
    elif settings.prompt_file is not None:
        checks.append(
            Check(
                "prompt",
                False,
                f"prompt file not found: {settings.prompt_file}; create it, or pass --prompt TEXT",
            )
        )
    else:
        checks.append(
            Check(
                "prompt",
                False,
                "no prompt: pass --prompt TEXT, --prompt-file FILE, or create PROMPT.md in the "
                "project",
            )
        )
    checks.append(_claude_check(facts, settings))
    checks.append(_auth_check(facts))
    if facts.state_dir_writable:
        checks.append(Check("state-dir", True, f"{STATE_DIR}/ writable"))
    else:
        checks.append(
            Check(
                "state-dir",
                False,
                f"{STATE_DIR}/ is not writable: check the project directory's owner and "
                f"permissions",
            )
        )
    checks.append(_symlink_check(facts))
    return checks


def snapshot_ignored_warning(settings: Settings) -> str | None:
    """One line when the user opted in to ignored files in snapshots: they are usually
    secrets, and refs are what `git push --mirror` and `git bundle --all` carry away."""
    patterns = list(settings.snapshot_ignored)
    if not patterns:
        return None
    shown = ", ".join(patterns)
    return (
        f"snapshot_ignored ({shown}) puts ignored files into every snapshot: refs/unattended/* "
        f"then hold them (secrets, if they are .env files), and git push --mirror or "
        f"git bundle --all carries them off this machine"
    )


def failures(checks: Sequence[Check]) -> list[Check]:
    return [check for check in checks if not check.ok]
