"""Work-tree snapshots as commit objects under refs/unattended/, so no worker can lose work.

A snapshot is built in a temporary index (seeded from a copy of the real one, so git's
stat cache spares rehashing unchanged files) and written as a commit with HEAD as parent.
The user's index, work tree, stash and branches are never touched. Ignored files matching
`snapshot_ignored` (none by default; a user may opt in to local secrets such as `.env`) are
force-added, listed in the commit message, and held back on restore unless asked for: a
restored branch never carries them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import os
import re
import secrets
import shutil
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from unattended.supervisor.git.facts import (
    STATE_DIR_NAME,
    GitError,
    decode,
    git_process,
    locate_repo,
    project_prefix,
    run_git,
)

REF_ROOT = "refs/unattended"
PHASES = ("before", "after")
DEFAULT_SNAPSHOT_IGNORED: tuple[str, ...] = ()  # opt-in only: see contracts.settings
IGNORED_TRAILER = "Unattended-Ignored:"

# Snapshots are the supervisor's own commits: a fixed identity works in a repo with no
# user configured and makes them easy to tell apart.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "unattended",
    "GIT_AUTHOR_EMAIL": "unattended@localhost",
    "GIT_COMMITTER_NAME": "unattended",
    "GIT_COMMITTER_EMAIL": "unattended@localhost",
}
_LEAF_RE = re.compile(r"^(\d+)-(before|after)$")


class SnapshotError(GitError):
    """A snapshot operation was refused (unknown ref, existing branch, bad name...)."""


@dataclass(frozen=True)
class Snapshot:
    """One snapshot; `tree` doubles as the work tree's content hash (progress evidence)."""

    ref: str
    commit: str
    tree: str
    ignored: tuple[str, ...] = ()  # force-added ignored paths ('dir/' for a whole directory)
    warning: str | None = None  # git add's first complaint when some file could not be read


@dataclass(frozen=True)
class SnapshotInfo:
    ref: str
    commit: str
    date: datetime
    run_id: str
    iteration: int
    phase: str
    subject: str

    @property
    def short_ref(self) -> str:
        """The ref without `refs/unattended/`, as `recover --restore` accepts it."""
        return self.ref.removeprefix(REF_ROOT + "/")


def ref_safe_run_id(run_id: str) -> str:
    """`run_id` as one valid ref component (an ISO timestamp's ':' become '-')."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", run_id)
    safe = re.sub(r"\.{2,}", "-", safe).lstrip(".")
    if safe.endswith((".", ".lock")):
        safe += "_"
    if not safe:
        raise SnapshotError(f"run id {run_id!r} cannot name a snapshot ref")
    return safe


def snapshot_ref(run_id: str, iteration: int, phase: str) -> str:
    if phase not in PHASES:
        raise SnapshotError(f"snapshot phase must be 'before' or 'after', not {phase!r}")
    if iteration < 0:
        raise SnapshotError(f"iteration must not be negative, got {iteration}")
    return f"{REF_ROOT}/{ref_safe_run_id(run_id)}/{iteration:04d}-{phase}"


@functools.lru_cache(maxsize=64)
def _toplevel(project: str) -> Path:
    """The work tree's top; cached because the daemon snapshots one project all night."""
    return locate_repo(Path(project))[0]


def take_snapshot(
    project: Path,
    git_dir: Path,
    run_id: str,
    iteration: int,
    phase: str,
    snapshot_ignored: Sequence[str] = DEFAULT_SNAPSHOT_IGNORED,
) -> Snapshot:
    """Record the whole work tree under refs/unattended/<run>/<NNNN>-<phase>.

    Tracked and untracked files (respecting .gitignore), plus ignored files whose name
    matches `snapshot_ignored`, never `<project>/.unattended/`. Six git calls or so.
    """
    ref = snapshot_ref(run_id, iteration, phase)
    top = _toplevel(os.path.abspath(project))
    prefix = project_prefix(top, project)
    git_dir = Path(git_dir)
    index = git_dir / f"unattended-snapshot-{os.getpid()}-{secrets.token_hex(4)}.index"
    env = {"GIT_INDEX_FILE": str(index), **_IDENTITY}
    try:
        with contextlib.suppress(FileNotFoundError):  # a fresh repo has no index yet
            shutil.copyfile(git_dir / "index", index)
        state_dir = f":(exclude){prefix}{STATE_DIR_NAME}"
        # --ignore-errors: one unreadable file must not cost the whole snapshot.
        added = git_process(
            top, "add", "-A", "--ignore-errors", "--", ":/", state_dir, env=env, check=False
        )
        if added.returncode not in (0, 1):  # 1: some files unreadable; else git gave up
            raise GitError(f"git add -A failed: {_first_line(decode(added.stderr))}")
        warning = _first_line(decode(added.stderr)) if added.returncode else None
        ignored = _matching_ignored(top, prefix, snapshot_ignored) if snapshot_ignored else []
        if ignored:
            git_process(
                top,
                "add",
                "-f",
                "--ignore-errors",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
                env={**env, "GIT_LITERAL_PATHSPECS": "1"},
                input="\0".join(p.rstrip("/") for p in ignored) + "\0",
                check=False,
            )
        tree = run_git(top, "write-tree", env=env).strip()
        message = _message(run_id, iteration, phase, ignored)
        commit = _commit_tree(top, tree, message, env, parents=("HEAD",), parent_optional=True)
        run_git(top, "update-ref", ref, commit)
    finally:
        index.unlink(missing_ok=True)
    return Snapshot(ref=ref, commit=commit, tree=tree, ignored=tuple(ignored), warning=warning)


def _first_line(text: str) -> str | None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return next((ln for ln in lines if not ln.startswith(("hint:", "warning:"))), None)


def _matching_ignored(top: Path, prefix: str, globs: Sequence[str]) -> list[str]:
    """Ignored files (and whole ignored directories, 'dir/') whose name matches `globs`.

    `--directory` keeps git from walking into ignored trees such as node_modules/, so a
    secret file inside a wholly ignored directory is not found unless the directory's own
    name matches. A glob with a '/' is matched against the whole top-relative path.
    """
    out = run_git(top, "ls-files", "-z", "-o", "-i", "--exclude-standard", "--directory")
    state_dir = prefix + STATE_DIR_NAME + "/"
    found = []
    for entry in out.split("\0"):
        if not entry or (entry + "/").startswith(state_dir):
            continue
        path = entry.rstrip("/")
        name = path.rsplit("/", 1)[-1]
        for pattern in globs:
            target = path if "/" in pattern else name
            if fnmatch.fnmatchcase(target, pattern.rstrip("/")):
                found.append(entry)
                break
    return found


def _message(run_id: str, iteration: int, phase: str, ignored: Sequence[str]) -> str:
    lines = [
        f"unattended snapshot: run {run_id}, iteration {iteration}, {phase}",
        "",
        f"Unattended-Run: {run_id}",
        f"Unattended-Iteration: {iteration}",
        f"Unattended-Phase: {phase}",
    ]
    if ignored:
        lines.append(f"{IGNORED_TRAILER} {json.dumps(list(ignored), ensure_ascii=True)}")
    return "\n".join(lines) + "\n"


def _commit_tree(
    top: Path,
    tree: str,
    message: str,
    env: dict[str, str],
    parents: Sequence[str],
    parent_optional: bool = False,
) -> str:
    base = ["commit-tree", "--no-gpg-sign", tree, "-F", "-"]
    args = base + [arg for parent in parents for arg in ("-p", parent)]
    proc = git_process(top, *args, env=env, input=message, check=not parent_optional)
    if proc.returncode != 0:  # HEAD is unborn: a snapshot without parent
        proc = git_process(top, *base, env=env, input=message)
    return decode(proc.stdout).strip()


def list_snapshots(project: Path, run_id: str | None = None) -> list[SnapshotInfo]:
    """Snapshots of one run (or all), newest first."""
    pattern = REF_ROOT + "/" + (ref_safe_run_id(run_id) + "/" if run_id else "")
    out = run_git(
        project,
        "for-each-ref",
        "--format=%(refname)%00%(objectname)%00%(committerdate:iso-strict)%00%(subject)",
        pattern,
    )
    infos = []
    for line in out.splitlines():
        fields = line.split("\0")
        if len(fields) != 4:
            continue
        ref, commit, date, subject = fields
        parsed = _parse_ref(ref)
        if parsed is None or not date:
            continue
        rid, iteration, phase = parsed
        when = datetime.fromisoformat(date)
        infos.append(SnapshotInfo(ref, commit, when, rid, iteration, phase, subject))
    infos.sort(key=lambda s: (s.date, s.iteration, PHASES.index(s.phase)), reverse=True)
    return infos


def _parse_ref(ref: str) -> tuple[str, int, str] | None:
    rest = ref.removeprefix(REF_ROOT + "/")
    if rest == ref or "/" not in rest:
        return None
    rid, leaf = rest.rsplit("/", 1)
    m = _LEAF_RE.match(leaf)
    return (rid, int(m.group(1)), m.group(2)) if m else None


def prune_snapshots(project: Path, keep_run_ids: Collection[str]) -> int:
    """Delete the snapshot refs of every run not in `keep_run_ids`; return how many."""
    keep = {ref_safe_run_id(r) for r in keep_run_ids}
    out = run_git(project, "for-each-ref", "--format=%(refname)", REF_ROOT + "/")
    doomed = []
    for ref in out.splitlines():
        rest = ref.removeprefix(REF_ROOT + "/")
        run = rest.rsplit("/", 1)[0] if "/" in rest else rest
        if run not in keep:
            doomed.append(ref)
    if doomed:
        run_git(project, "update-ref", "--stdin", input="".join(f"delete {r}\n" for r in doomed))
    return len(doomed)
