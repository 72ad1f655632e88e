"""Gather the facts ``safety.preflight`` judges before a run: git, prompt, binary, permissions."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from unattended.contracts.paths import STATE_DIR_NAME, RunPaths, lock_path, shown_path
from unattended.contracts.settings import Settings
from unattended.supervisor.run.auth import auth_source
from unattended.supervisor.run.prompt import PromptSource, prompt_source


@dataclass(frozen=True)
class Gathered:
    facts: object  # safety.preflight.PreflightFacts
    prompt: PromptSource | None
    claude_bin: str | None


def resolve_binary(name: str, environ: dict[str, str] | None = None) -> str | None:
    """An absolute path for ``name`` (a path, or a command looked up on PATH)."""
    if os.sep in name or (os.altsep and os.altsep in name):
        path = Path(name).expanduser()
        return str(path.resolve()) if path.exists() else None
    path_var = (environ or os.environ).get("PATH")
    return shutil.which(name, path=path_var)


def _writable(paths: RunPaths) -> bool:
    root = paths.root
    target = root if root.exists() else paths.project
    return os.access(target, os.W_OK | os.X_OK)


def planted_symlinks(paths: RunPaths, git_dir: Path | None) -> tuple[str, ...]:
    """Symlinks where the daemon writes: ``.unattended`` itself (in the work tree and in the
    git dir), their entries and those of the directories it writes in, and the lock. Shown
    relative to the project when inside it."""
    found: list[Path] = []
    candidates = [paths.root, *_entries(paths.root)]
    if paths.records != paths.root:
        candidates += [paths.records, *_entries(paths.records)]
    for sub in (paths.iterations, paths.runs):
        if sub.is_dir() and not sub.is_symlink():
            candidates.extend(_entries(sub))
    if git_dir is not None:
        candidates.append(lock_path(git_dir))
    for path in candidates:
        if path.is_symlink():
            found.append(path)
    return tuple(shown_path(path, paths.project) for path in found)


def _entries(directory: Path) -> list[Path]:
    if directory.is_symlink() or not directory.is_dir():
        return []
    try:
        return list(directory.iterdir())
    except OSError:
        return []


def tracked_symlinks(project: Path, listing: str | None = None) -> tuple[str, ...]:
    """Symlinks the repository itself tracks under ``.unattended/`` (a hostile clone's);
    ``listing``: that `ls-files -s -z` output, when the caller ran it already."""
    from unattended.supervisor.git.facts import run_git

    if listing is None:
        listing = run_git(project, *_TRACKED_STATE_ARGS, check=False)
    links = []
    for entry in listing.split("\0"):
        meta, _, name = entry.partition("\t")
        if name and meta.startswith("120000 "):
            links.append(name)
    return tuple(links)


_TRACKED_STATE_ARGS = ("ls-files", "-s", "-z", "--", STATE_DIR_NAME)


def gather(
    project: Path,
    settings: Settings,
    environ: dict[str, str],
    located: tuple[Path, Path, Path] | None = None,
) -> Gathered:
    """``located``: where the repository is, when the caller already asked git (see
    ``facts.locate_repo``), so it is not asked twice."""
    from unattended.safety.preflight import PreflightFacts
    from unattended.supervisor.git.facts import (
        NotAGitRepo,
        decode,
        gather_repo_facts,
        git_spawn,
    )

    # In a repository already located, the tracked-files listing runs beside `git status`.
    listing = git_spawn(project, *_TRACKED_STATE_ARGS) if located is not None else None
    git_dir: Path | None = None
    try:
        repo = gather_repo_facts(project, tuple(settings.dirty_whitelist), located)
        in_repo, branch, detached, dirty = True, repo.branch, repo.detached, repo.dirty_paths
        git_dir = repo.git_dir
    except NotAGitRepo:
        in_repo, branch, detached, dirty = False, None, False, ()
    finally:  # collected (and reaped) whatever git status found
        listed = decode(listing.communicate()[0]) if listing is not None else None
    source = prompt_source(project, settings)
    prompt_ok = source is not None and (source.text is not None or source.file.is_file())
    binary = resolve_binary(settings.claude_bin, environ)
    facts = PreflightFacts(
        in_git_repo=in_repo,
        branch=branch,
        detached=detached,
        dirty_paths=tuple(dirty),
        prompt_available=prompt_ok,
        claude_bin_resolved=binary,
        claude_bin_executable=bool(binary)
        and os.access(binary, os.X_OK)
        and Path(binary).is_file(),
        state_dir_writable=_writable(RunPaths(project)),
        is_root=hasattr(os, "geteuid") and os.geteuid() == 0,
        is_sandbox_env=environ.get("IS_SANDBOX") == "1",
        auth_source=auth_source(environ, project),
        state_symlinks=planted_symlinks(RunPaths(project), git_dir),
        tracked_state_symlinks=tracked_symlinks(project, listed) if in_repo else (),
    )
    return Gathered(facts, source, binary)
