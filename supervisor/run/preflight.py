"""Gather the facts ``safety.preflight`` judges before a run: git, prompt, binary, permissions."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
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


def gather(
    project: Path,
    settings: Settings,
    environ: dict[str, str],
    located: tuple[Path, Path, Path] | None = None,
) -> Gathered:
    """``located``: where the repository is, when the caller already asked git (see
    ``facts.locate_repo``), so it is not asked twice."""
    from unattended.safety.preflight import PreflightFacts
    from unattended.supervisor.git.facts import NotAGitRepo, gather_repo_facts

    try:
        repo = gather_repo_facts(project, tuple(settings.dirty_whitelist), located)
        in_repo, branch, detached, dirty = True, repo.branch, repo.detached, repo.dirty_paths
    except NotAGitRepo:
        in_repo, branch, detached, dirty = False, None, False, ()
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
    )
    return Gathered(facts, source, binary)
