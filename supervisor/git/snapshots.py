"""Work-tree snapshots as commit objects under refs/unattended/, so no worker can lose work.

A snapshot is built in a temporary index (seeded from a copy of the real one, so git's
stat cache spares rehashing unchanged files) and written as a commit with HEAD as parent.
The user's index, work tree, stash and branches are never touched. Ignored files matching
`snapshot_ignored` (none by default; a user may opt in to local secrets such as `.env`) are
force-added, listed in the commit message, and held back on restore unless asked for: a
restored branch never carries them.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from unattended.supervisor.git.facts import (
    STATE_DIR_NAME,
    GitChild,
    GitError,
    _common_dir,
    decode,
    first_line,
    git_process,
    git_spawn,
    locate_repo,
    project_prefix,
    run_git,
)
from unattended.supervisor.git.watched import QuickAdd, WatchedTree

REF_ROOT = "refs/unattended"
PHASES = ("before", "after")
DEFAULT_SNAPSHOT_IGNORED: tuple[str, ...] = ()  # opt-in only: see contracts.settings
IGNORED_TRAILER = "Unattended-Ignored:"
WORKTREE_TRAILER = "Unattended-Worktree:"

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
    """Record the whole work tree under refs/unattended/<run>/<NNNN>-<phase>, once.

    Tracked and untracked files (respecting .gitignore), plus ignored files whose name
    matches `snapshot_ignored`, never `<project>/.unattended/`. The daemon takes its
    snapshots through a `Snapshotter`, which also skips unchanged ones.
    """
    git_dir = Path(git_dir)
    index = git_dir / f"unattended-snapshot-{os.getpid()}-{secrets.token_hex(4)}.index"
    try:
        shot = Snapshotter(project, git_dir, run_id, snapshot_ignored, index=index)
        snap = shot.take(iteration, phase, reuse_unchanged=False)[0]
        shot.flush()
        return snap
    finally:
        index.unlink(missing_ok=True)


class Snapshotter:
    """One run's snapshots, each as cheap as the repository allows.

    Each snapshot is built in `<git dir>/unattended-snapshot.index` (the run lock makes this
    daemon its only user), seeded from a fresh copy of the real index: git's stat cache then
    spares rehashing unchanged files, and the result is exactly what the work tree and the
    user's index say (an index kept between snapshots would keep files a worker has since
    ignored, and lose ignored files the user tracks). HEAD, `add -A` and the ignored-file scan
    run side by side. A snapshot identical to the previous one (same HEAD, same tree, same
    ignored files) is not written again: its name points at the previous one; see `take`.
    """

    INDEX_NAME = "unattended-snapshot.index"
    PACK_EVERY = 256  # loose snapshot refs before they are packed (`recover --list` stays fast)

    def __init__(
        self,
        project: Path,
        git_dir: Path,
        run_id: str,
        snapshot_ignored: Sequence[str] = DEFAULT_SNAPSHOT_IGNORED,
        index: Path | None = None,
        watch: bool = False,
    ) -> None:
        self.top = _toplevel(os.path.abspath(project))
        self.prefix = project_prefix(self.top, project)
        self.git_dir = Path(git_dir)
        self.run_id = run_id
        self.globs = tuple(snapshot_ignored)
        self.index = index or self.git_dir / self.INDEX_NAME
        self.env = {"GIT_INDEX_FILE": str(self.index), **_IDENTITY}
        self.worktree = worktree_id(self.git_dir)
        self.last: Snapshot | None = None
        self.last_head: str | None = None
        self.taken_at = 0.0  # time.monotonic() when `last` was taken or found unchanged
        self._unpacked: list[str] = []  # snapshot commits written since the last _pack
        self._pending: list[GitChild] = []  # ref writes not yet waited for
        # ((HEAD before, HEAD after), (commits, files changed)), counted during `take`
        self.counted: tuple[tuple[str, str], tuple[int, int]] | None = None
        self.watched: WatchedTree | None = None
        if watch:
            self.watched = WatchedTree(self.top, self.git_dir, self.prefix)
        self.quick = 0  # snapshots that asked git about the changed paths only

    def take(
        self, iteration: int, phase: str, reuse_unchanged: bool = True
    ) -> tuple[Snapshot, str | None]:
        """(the snapshot, HEAD) for this instant. With `reuse_unchanged`, a work tree and HEAD
        identical to the previous snapshot's return that snapshot: nothing new to restore."""
        ref = snapshot_ref(self.run_id, iteration, phase)
        self.flush()
        self._seed()
        state_dir = f":(exclude){self.prefix}{STATE_DIR_NAME}"
        # Independent reads run side by side: HEAD, the work tree into the index, and the
        # ignored files (they are not in the index, whichever version of it git reads).
        head_proc = git_spawn(self.top, "rev-parse", "-q", "--verify", "HEAD")
        changed = self._changed()
        quick = None
        if changed is not None and self.last is not None:
            quick = QuickAdd(self.top, self.env, self.prefix, self.last.tree, changed)
        ign_proc = (
            git_spawn(self.top, "ls-files", "-z", "-o", "-i", "--exclude-standard", "--directory")
            if self.globs
            else None
        )
        head = decode(head_proc.communicate()[0]).strip() or None
        if head_proc.returncode is None:
            raise GitError("git rev-parse HEAD did not finish")
        counting = self._count_from(head)
        added = quick.run(self.watched) if quick is not None else None
        if added is None:  # no watch, an answer that could miss something, or git refused
            if quick is not None:
                self._seed()  # start again from the real index: look at everything
            # --ignore-errors: one unreadable file must not cost the whole snapshot.
            add_proc = git_spawn(
                self.top, "add", "-A", "--ignore-errors", "--", ":/", state_dir, env=self.env
            )
            _, add_err = add_proc.communicate()
            if add_proc.returncode not in (0, 1):  # 1: some files unreadable; else git gave up
                raise GitError(f"git add -A failed: {first_line(decode(add_err))}")
            warning = first_line(decode(add_err)) if add_proc.returncode else None
        else:
            self.quick += 1
            warning = added.warning
        ignored = self._matching_ignored(ign_proc) if ign_proc is not None else []
        if ignored:
            git_process(
                self.top,
                "add",
                "-f",
                "--ignore-errors",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
                env={**self.env, "GIT_LITERAL_PATHSPECS": "1"},
                input="\0".join(p.rstrip("/") for p in ignored) + "\0",
                check=False,
            )
        if added is not None and not added.changed_index and not ignored and self.last is not None:
            tree = self.last.tree  # the index is the last snapshot's tree, untouched
        else:
            tree = run_git(self.top, "write-tree", env=self.env).strip()
        if counting is not None:
            self.counted = ((self.last_head or "", head or ""), _counts(*counting))
        self.taken_at = time.monotonic()
        last = self.last
        if (
            reuse_unchanged
            and last is not None
            and (last.tree, last.ignored, self.last_head) == (tree, tuple(ignored), head)
        ):
            return self.alias(iteration, phase), head
        message = _message(self.run_id, iteration, phase, ignored, self.worktree)
        parents = (head,) if head else ()
        commit = _commit_tree(self.top, tree, message, self.env, parents=parents)
        # The commit is written; its name follows while the daemon records the iteration
        # (see `flush`: waited for before the next snapshot or name, so before any worker).
        self._pending.append(git_spawn(self.top, "update-ref", ref, commit))
        self._unpacked.append(commit)
        if len(self._unpacked) >= self.PACK_EVERY:
            self._pack()
        snap = Snapshot(
            ref=ref, commit=commit, tree=tree, ignored=tuple(ignored), warning=warning
        )
        self.last, self.last_head = snap, head
        return snap, head

    def _changed(self) -> set[str] | None:
        """The paths changed since the last snapshot when the watch can tell (asked first
        of all: a fresh watch starts before the look at everything), else None."""
        if self.watched is None:
            return None
        try:
            return self.watched.changed()
        except (GitError, OSError):
            self.watched.close()  # started afresh next time
            return None

    def close(self) -> None:
        """The run is over: its watch goes too."""
        if self.watched is not None:
            self.watched.close()

    def flush(self) -> None:
        """Wait for the ref writes still running; GitError if one failed. Called before the
        next snapshot, and when the run ends."""
        pending, self._pending = self._pending, []
        failed = [p for p in pending if p.wait() != 0]
        if failed:
            _, err = failed[0].communicate()
            raise GitError(f"git update-ref failed: {first_line(decode(err))}")

    def _count_from(self, head: str | None) -> tuple[GitChild, GitChild] | None:
        """Commits and files changed since the previous snapshot's HEAD, started alongside
        `add -A` (at most 100 commits are counted, as commit_range_summary does)."""
        before = self.last_head
        if not before or not head or before == head:
            return None
        return (
            git_spawn(self.top, "rev-list", "--max-count=100", f"{before}..{head}", "--"),
            git_spawn(
                self.top, "diff-tree", "-r", "-z", "--no-renames", "--name-only", before, head
            ),
        )

    def _pack(self) -> None:
        """Pack the refs and the snapshot commits written since the last time: thousands of
        loose ones make `recover --list` read thousands of files. What git gc does too (no
        ref's value and no object changes); trees and blobs stay for gc to pack."""
        self.flush()
        ids = "\n".join(self._unpacked) + "\n"
        self._unpacked = []
        git_process(self.top, "pack-refs", "--all", check=False)
        pack_base = str(_common_dir(self.git_dir) / "objects" / "pack" / "pack")
        packed = git_process(self.top, "pack-objects", "-q", pack_base, input=ids, check=False)
        if packed.returncode == 0:
            git_process(self.top, "prune-packed", "-q", check=False)

    def alias(self, iteration: int, phase: str) -> Snapshot:
        """Name the last snapshot for this iteration and phase too (one `update-ref`, no walk
        of the tree): `recover` lists and restores every iteration's before and after."""
        last = self.last
        if last is None:
            raise SnapshotError("no snapshot to name yet")
        ref = snapshot_ref(self.run_id, iteration, phase)
        self.flush()  # no child of ours may outlive this: the next worker would adopt it
        if ref != last.ref:
            run_git(self.top, "update-ref", ref, last.commit)
        return Snapshot(ref=ref, commit=last.commit, tree=last.tree, ignored=last.ignored)

    def _seed(self) -> None:
        real = self.git_dir / "index"
        try:
            shutil.copyfile(real, self.index)
            st = os.stat(real)
        except FileNotFoundError:  # a fresh repo has no index yet
            self.index.unlink(missing_ok=True)
            return
        # The copy keeps the index's mtime: git's racy-entry check compares file mtimes with
        # it, and a newer copy would pass a same-second, same-size edit off as unchanged.
        os.utime(self.index, ns=(st.st_atime_ns, st.st_mtime_ns))

    def _matching_ignored(self, proc: GitChild) -> list[str]:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise GitError("git ls-files -o -i failed")
        return _matching_ignored(decode(out), self.prefix, self.globs)


def _counts(log: GitChild, diff: GitChild) -> tuple[int, int]:
    commits, files = log.communicate()[0], diff.communicate()[0]
    if log.returncode != 0 or diff.returncode != 0:
        return 0, 0
    return len(decode(commits).split()), sum(1 for p in decode(files).split("\0") if p)


def worktree_id(git_dir: Path) -> str:
    """A short stable id of one work tree (its git dir), for snapshot messages: pruning
    then tells this work tree's runs from another's. A hash: refs may be pushed."""
    digest = hashlib.sha256(os.fsencode(os.path.realpath(git_dir))).hexdigest()
    return digest[:16]


def _matching_ignored(out: str, prefix: str, globs: Sequence[str]) -> list[str]:
    """Ignored files (and whole ignored directories, 'dir/') whose name matches `globs`, from
    `git ls-files -z -o -i --exclude-standard --directory` output.

    `--directory` keeps git from walking into ignored trees such as node_modules/, so a
    secret file inside a wholly ignored directory is not found unless the directory's own
    name matches. A glob with a '/' is matched against the whole top-relative path.
    """
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


def _message(run_id: str, iteration: int, phase: str, ignored: Sequence[str], worktree: str) -> str:
    lines = [
        f"unattended snapshot: run {run_id}, iteration {iteration}, {phase}",
        "",
        f"Unattended-Run: {run_id}",
        f"Unattended-Iteration: {iteration}",
        f"Unattended-Phase: {phase}",
        f"{WORKTREE_TRAILER} {worktree}",
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
) -> str:
    args = ["commit-tree", "--no-gpg-sign", tree, "-F", "-"]
    args += [arg for parent in parents for arg in ("-p", parent)]
    return decode(git_process(top, *args, env=env, input=message).stdout).strip()


def list_snapshots(
    project: Path, run_id: str | None = None, with_subject: bool = True
) -> list[SnapshotInfo]:
    """Snapshots of one run (or all), newest first. Without `with_subject` git reads only
    the commits' headers, several times faster over thousands of snapshots (`subject` is
    then empty): `recover --list` shows no subject."""
    pattern = REF_ROOT + "/" + (ref_safe_run_id(run_id) + "/" if run_id else "")
    fields = "%(refname)%00%(objectname)%00%(committerdate:iso-strict)"
    fields += "%00%(subject)" if with_subject else "%00"
    out = run_git(project, "for-each-ref", f"--format={fields}", pattern)
    infos = []
    for line in out.splitlines():
        parts = line.split("\0")
        if len(parts) != 4:
            continue
        ref, commit, date, subject = parts
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


def prune_snapshots(
    project: Path,
    keep_run_ids: Collection[str],
    worktree: str | None = None,
    only_run_ids: Collection[str] | None = None,
) -> int:
    """Delete the snapshot refs of every run not in `keep_run_ids`; return how many.

    With `worktree` (see `worktree_id`) only snapshots that work tree took are candidates:
    refs are shared by every work tree of a repository, and another one's runs (live or
    not) are its own business. Snapshots from before the work tree was recorded are kept.
    With `only_run_ids`, only those runs' snapshots are candidates.
    """
    keep = {ref_safe_run_id(r) for r in keep_run_ids}
    if only_run_ids is not None:
        only = {ref_safe_run_id(r) for r in only_run_ids}
        if not only:
            return 0
    fmt = "%(refname)" + ("%00%(trailers:key=Unattended-Worktree,valueonly)" if worktree else "")
    out = run_git(project, "for-each-ref", f"--format={fmt}", REF_ROOT + "/")
    doomed = []
    for line in out.splitlines():
        ref, _, owner = line.partition("\0")
        rest = ref.removeprefix(REF_ROOT + "/")
        run = rest.rsplit("/", 1)[0] if "/" in rest else rest
        if run in keep or (worktree is not None and owner.strip() != worktree):
            continue
        if only_run_ids is not None and run not in only:
            continue
        doomed.append(ref)
    if doomed:
        run_git(project, "update-ref", "--stdin", input="".join(f"delete {r}\n" for r in doomed))
    return len(doomed)
