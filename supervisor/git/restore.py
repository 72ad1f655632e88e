"""Restoring a work-tree snapshot onto a new branch (`unattended recover --restore`).

The branch is created, never checked out. Ignored files the snapshot held (local secrets such as
`.env`) are written back into the work tree only when asked for, and never committed.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from unattended.supervisor.git.facts import git_process, locate_repo, run_git
from unattended.supervisor.git.snapshots import (
    _IDENTITY,
    IGNORED_TRAILER,
    REF_ROOT,
    SnapshotError,
    _commit_tree,
    _parse_ref,
    _toplevel,
)


@dataclass(frozen=True)
class RestoreResult:
    ref: str
    branch: str
    commit: str
    written: tuple[str, ...] = ()  # ignored files written back into the work tree
    skipped: tuple[tuple[str, str], ...] = ()  # (path, why) for ignored files not written
    held_back: tuple[str, ...] = ()  # ignored files left out (no --with-ignored)


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
