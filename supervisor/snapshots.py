"""Work-tree snapshots as commit objects under refs/unattended/, so no worker can lose work.

A snapshot is built in a temporary index (seeded from a copy of the real one, so git's
stat cache spares rehashing unchanged files) and written as a commit with HEAD as parent.
The user's index, work tree, stash and branches are never touched. Ignored files matching
`snapshot_ignored` (local secrets such as `.env`) are force-added, listed in the commit
message, and held back on restore unless asked for: a restored branch never carries them.
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

from supervisor.gitfacts import (
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
DEFAULT_SNAPSHOT_IGNORED: tuple[str, ...] = (".env", ".env.*")
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


@dataclass(frozen=True)
class RestoreResult:
    ref: str
    branch: str
    commit: str
    written: tuple[str, ...] = ()  # ignored files written back into the work tree
    skipped: tuple[tuple[str, str], ...] = ()  # (path, why) for ignored files not written
    held_back: tuple[str, ...] = ()  # ignored files left out (no --with-ignored)


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


def resolve_snapshot_ref(project: Path, ref: str) -> tuple[str, str]:
    """(full ref or given revision, commit) for what a user typed.

    Accepts `refs/unattended/R/0003-after`, `unattended/R/0003-after`, `R/0003-after`,
    `R/3-after`, or a snapshot commit id.
    """
    ref = ref.strip()
    if not ref or ref.startswith("-"):
        raise SnapshotError(f"invalid snapshot ref {ref!r}")
    if ref.startswith("refs/"):
        full = ref
    elif ref.startswith("unattended/"):
        full = "refs/" + ref
    else:
        full = f"{REF_ROOT}/{ref}"
    parsed = _parse_ref(full)
    if parsed is not None:
        full = f"{REF_ROOT}/{parsed[0]}/{parsed[1]:04d}-{parsed[2]}"
    for candidate in (full, ref):
        commit = run_git(
            project,
            "rev-parse",
            "-q",
            "--verify",
            "--end-of-options",
            candidate + "^{commit}",
            check=False,
        ).strip()
        if commit and (candidate == full or _is_snapshot_commit(project, commit)):
            return candidate, commit
    raise SnapshotError(f"no snapshot {ref!r} here (list them with `unattended recover --list`)")


def _is_snapshot_commit(project: Path, commit: str) -> bool:
    return "\nUnattended-Run: " in _commit_message(project, commit)


def _commit_message(project: Path, commit: str) -> str:
    raw = run_git(project, "cat-file", "commit", commit)
    return raw.split("\n\n", 1)[1] if "\n\n" in raw else ""


def _commit_parents(project: Path, commit: str) -> list[str]:
    raw = run_git(project, "cat-file", "commit", commit)
    header = raw.split("\n\n", 1)[0]
    return [ln.split(" ", 1)[1] for ln in header.splitlines() if ln.startswith("parent ")]


def _held_back_paths(message: str) -> list[str]:
    for line in message.splitlines():
        if line.startswith(IGNORED_TRAILER):
            try:
                value = json.loads(line[len(IGNORED_TRAILER) :])
            except json.JSONDecodeError:
                return []
            return [p for p in value if isinstance(p, str)]
    return []


def restore_snapshot(
    project: Path, ref: str, to_branch: str, with_ignored: bool = False
) -> RestoreResult:
    """Create branch `to_branch` (not checked out) holding the snapshot's work.

    Its commit sits on the snapshot's parent (HEAD at snapshot time) and its tree is the
    snapshot's minus the force-added ignored files, so pushing the branch cannot leak them.
    With `with_ignored` those files are written into the work tree, never over an
    existing file.
    """
    top = _toplevel(os.path.abspath(project))
    full, commit = resolve_snapshot_ref(top, ref)
    branch_ref = _new_branch_ref(top, to_branch)
    message = _commit_message(top, commit)
    held = _held_back_paths(message)
    entries = _tree_entries(top, commit, held) if held else []
    tree = run_git(top, "rev-parse", f"{commit}^{{tree}}").strip()
    if entries:
        tree = _tree_without(top, tree, [path for _, _, path in entries])
    subject = message.splitlines()[0] if message else full
    restore_message = (
        f"Work restored from {full}\n\n({subject.removeprefix('unattended ')}; "
        f"restored by `unattended recover`)\n"
    )
    env = _identity_fallback(top)
    new_commit = _commit_tree(top, tree, restore_message, env, parents=_commit_parents(top, commit))
    run_git(top, "update-ref", branch_ref, new_commit, "")
    written: list[str] = []
    skipped: list[tuple[str, str]] = []
    if with_ignored:
        for mode, blob, path in entries:
            why = _write_back(top, mode, blob, path)
            if why is None:
                written.append(path)
            else:
                skipped.append((path, why))
    held_back = () if with_ignored else tuple(path for _, _, path in entries)
    return RestoreResult(
        ref=full,
        branch=to_branch,
        commit=new_commit,
        written=tuple(written),
        skipped=tuple(skipped),
        held_back=held_back,
    )


def _new_branch_ref(top: Path, name: str) -> str:
    bad = not name or name.startswith("-")
    if bad or not run_git(top, "check-ref-format", "--branch", name, check=False).strip():
        raise SnapshotError(f"{name!r} is not a valid branch name")
    ref = f"refs/heads/{name}"
    if run_git(top, "rev-parse", "-q", "--verify", ref, check=False).strip():
        raise SnapshotError(f"branch {name!r} already exists; choose a new name for --to-branch")
    return ref


def _tree_entries(top: Path, commit: str, paths: Sequence[str]) -> list[tuple[str, str, str]]:
    """(mode, blob, path) of the files under `paths` in the commit's tree."""
    out = run_git(
        top,
        "ls-tree",
        "-r",
        "-z",
        "--full-tree",
        commit,
        "--",
        *[p.rstrip("/") for p in paths],
        env={"GIT_LITERAL_PATHSPECS": "1"},
    )
    entries = []
    for rec in out.split("\0"):
        if not rec:
            continue
        meta, path = rec.split("\t", 1)
        mode, kind, obj = meta.split(" ")
        if kind == "blob":
            entries.append((mode, obj, path))
    return entries


def _tree_without(top: Path, tree: str, paths: Sequence[str]) -> str:
    """The id of `tree` with `paths` removed, built in a throwaway index."""
    git_dir = locate_repo(top)[1]
    index = git_dir / f"unattended-restore-{os.getpid()}-{secrets.token_hex(4)}.index"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        run_git(top, "read-tree", tree, env=env)
        run_git(
            top,
            "update-index",
            "--force-remove",
            "-z",
            "--stdin",
            env=env,
            input="\0".join(paths) + "\0",
        )
        return run_git(top, "write-tree", env=env).strip()
    finally:
        index.unlink(missing_ok=True)


def _identity_fallback(top: Path) -> dict[str, str]:
    """The user's identity when git has one, else ours, so restore works in a bare setup."""
    ok = git_process(top, "var", "GIT_COMMITTER_IDENT", check=False).returncode == 0
    ok = ok and git_process(top, "var", "GIT_AUTHOR_IDENT", check=False).returncode == 0
    return {} if ok else dict(_IDENTITY)


def _write_back(top: Path, mode: str, blob: str, path: str) -> str | None:
    """Write one held-back file; None when written, else why it was skipped."""
    parts = path.split("/")
    if any(p in ("", ".", "..", ".git") for p in parts):
        return "unsafe path in snapshot; not written"
    dest = top.joinpath(*parts)
    data = git_process(top, "cat-file", "blob", blob).stdout
    if dest.is_symlink() or dest.exists():
        plain = mode != "120000" and dest.is_file() and not dest.is_symlink()
        if plain and dest.read_bytes() == data:
            return "already in the work tree with the same content"
        return "exists in the work tree with different content; left untouched"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            os.symlink(os.fsdecode(data), dest)
            return None
        perms = 0o700 if mode == "100755" else 0o600  # held-back files are usually secrets
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perms)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except FileExistsError:
        return "appeared in the work tree meanwhile; left untouched"
    except OSError as exc:
        return f"could not write: {exc.strerror or exc}"
    return None


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
