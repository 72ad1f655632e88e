"""The work tree's changes between two snapshots, so that a snapshot asks git about those only.

A `WatchedTree` keeps an inotify watch (`platform_adapters.fswatch`) on every directory git
would look at: not the git dir, not our state dir, not trees that are wholly ignored. Between
two snapshots it answers with the paths that changed, or None: look at everything. None comes
whenever the answer could miss something: no watch on this OS, dropped events, a moved
directory, a nested repository, or a change to what git ignores (a `.gitignore`, the
repository's `info/exclude`, the user's excludes file), since that changes which untouched files
a snapshot holds. After a None the watch starts afresh, before the caller looks at everything,
so the next answer is complete again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from unattended.contracts.names import STATE_DIR_NAME
from unattended.supervisor.git.facts import (
    _common_dir,
    decode,
    first_line,
    git_process,
    git_spawn,
    project_prefix,
    run_git,
)

if TYPE_CHECKING:  # imported when the first watch starts (ctypes): snapshots import this
    from unattended.platform_adapters.fswatch import TreeWatch

IGNORE_RULE_FILES = (".gitignore",)


class WatchedTree:
    def __init__(self, top: Path, git_dir: Path, prefix: str) -> None:
        self.top = top
        self.git_dir = git_dir
        self.state_dir = prefix + STATE_DIR_NAME  # top-relative
        self._watch: TreeWatch | None = None
        self._rules: tuple[tuple[int, int, int] | None, ...] = ()
        self._excludes_file: Path | None = None  # the user's core.excludesFile, once known

    def changed(self) -> set[str] | None:
        """Top-relative paths that changed since the last call (files, and directories that
        appeared, removed or were created), or None: look at everything this time."""
        watch = self._watch
        if watch is None or watch.broken:
            self._restart()
            return None
        changes = watch.drain()
        if not changes.complete or self._rules != self._rule_files():
            self._restart()
            return None
        paths = {p for p in changes.paths if not self._ours(p)}
        if any(p.rsplit("/", 1)[-1] in IGNORE_RULE_FILES for p in paths):
            self._restart()
            return None
        new_dirs = sorted(d for d in changes.new_dirs if d in paths and self._is_dir(d))
        # A directory that was there before changed only in what is in it: those paths are
        # here themselves (naming it would make git look at its whole subtree).
        paths = {p for p in paths if p in changes.new_dirs or not self._is_dir(p)}
        for ignored in self._ignored(new_dirs):
            paths.discard(ignored)  # what git would not add; tracked files inside come via
            new_dirs.remove(ignored)  # the index (the snapshot's index diff names them)
        for rel in new_dirs:
            watch.add_tree(rel)
        if watch.broken:
            self._restart()
            return None
        return paths

    def watch_dirs_of(self, paths: set[str]) -> None:
        """Watch the directory of each tracked path the watch does not cover (a file the
        index holds inside an ignored directory): from now on its changes are seen too. The
        directory alone: tracked files further down arrive here the same way."""
        watch = self._watch
        if watch is None:
            return
        for path in paths:
            parent = path.rpartition("/")[0]
            if not watch.is_watched(parent) and not self._ours(parent) and self._is_dir(parent):
                watch.add_dir(parent)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        self._watch = None

    def _restart(self) -> None:
        from unattended.platform_adapters.fswatch import TreeWatch

        self.close()
        if self._excludes_file is None:
            self._excludes_file = self._user_excludes()
        self._rules = self._rule_files()
        skip = {self.state_dir, *self._wholly_ignored()}
        git_dir_rel = project_prefix(self.top, self.git_dir).rstrip("/")
        if git_dir_rel:  # a git dir inside the tree (a worktree's `.git` is only a file)
            skip.add(git_dir_rel)
        self._watch = TreeWatch.start(self.top, skip)

    def _wholly_ignored(self) -> set[str]:
        """Ignored directories that hold no tracked file: nothing in them reaches a snapshot
        (unless `snapshot_ignored` asks, and then the snapshot looks at everything)."""
        out = run_git(
            self.top, "ls-files", "-z", "-o", "-i", "--exclude-standard", "--directory", check=False
        )
        return {entry.rstrip("/") for entry in out.split("\0") if entry.endswith("/")}

    def _ignored(self, dirs: list[str]) -> list[str]:
        if not dirs:
            return []
        done = git_process(
            self.top, "check-ignore", "-z", "--stdin",
            input="\0".join(dirs) + "\0", check=False,
        )  # fmt: skip
        return [p for p in decode(done.stdout).split("\0") if p in dirs]

    def _rule_files(self) -> tuple[tuple[int, int, int] | None, ...]:
        """What identifies the ignore rules outside the tree: a change means a fresh look."""
        files = [_common_dir(self.git_dir) / "info" / "exclude"]
        if self._excludes_file is not None:
            files.append(self._excludes_file)
        return tuple(_identity(path) for path in files)

    def _user_excludes(self) -> Path:
        """core.excludesFile, or git's default for it."""
        out = run_git(self.top, "config", "--path", "--get", "core.excludesFile", check=False)
        if out.strip():
            return Path(out.strip())
        config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        return Path(config_home) / "git" / "ignore"

    def _ours(self, path: str) -> bool:
        return path == self.state_dir or path.startswith(self.state_dir + "/")

    def _is_dir(self, rel: str) -> bool:
        return os.path.isdir(self.top / rel) and not os.path.islink(self.top / rel)


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


@dataclass(frozen=True)
class Added:
    changed_index: bool = False
    warning: str | None = None  # git add's first complaint (an unreadable file)


class QuickAdd:
    """`add -A` of the changed paths only, into the index seeded from the real one: the index
    a whole `add -A` would make there. Paths where the seed and the last snapshot differ (the
    index moved under us: a commit, a reset, an untracked file the last snapshot held) are
    looked at too: git names them (`diff-index`) while the changed paths are added."""

    def __init__(
        self, top: Path, env: dict[str, str], prefix: str, base_tree: str, changed: set[str]
    ) -> None:
        self.top, self.env, self.changed = top, env, changed
        self.state_dir = prefix + STATE_DIR_NAME + "/"
        self._diff = git_spawn(
            top, "diff-index", "--cached", "-z", "--name-only", base_tree, env=env
        )

    def run(self, watched: WatchedTree | None) -> Added | None:
        """The additions; None when git refused (the caller then looks at everything)."""
        try:
            first = self._add(self.changed)
        finally:
            out, _ = self._diff.communicate()  # it read the seed or our additions: the same
        if first is None or self._diff.returncode != 0:  # for every path but the changed ones
            return None
        differing = {
            p for p in decode(out).split("\0") if p and not (p + "/").startswith(self.state_dir)
        } - self.changed
        second = self._add(differing) if differing else Added()
        if second is None:
            return None
        if differing and watched is not None:
            watched.watch_dirs_of(differing)
        return Added(first.changed_index or second.changed_index, first.warning or second.warning)

    def _add(self, paths: set[str]) -> Added | None:
        present, gone = [], []
        for path in sorted(paths):
            (present if os.path.lexists(self.top / path) else gone).append(path)
        if gone:  # `add` refuses a path that matches nothing, and these may be in no index
            done = git_process(
                self.top, "update-index", "--force-remove", "-z", "--stdin",
                env=self.env, input="\0".join(gone) + "\0", check=False,
            )  # fmt: skip
            if done.returncode != 0:
                return None
        if not present:
            return Added(changed_index=bool(gone))
        done = git_process(
            # A few paths: threads that stat the whole index ahead (preload) only cost here.
            self.top, "-c", "advice.addIgnoredFile=false", "-c", "core.preloadIndex=false",
            "add", "-A", "--ignore-errors", "--pathspec-from-file=-", "--pathspec-file-nul",
            env={**self.env, "GIT_LITERAL_PATHSPECS": "1", "LC_ALL": "C", "LANGUAGE": ""},
            input="\0".join(present) + "\0", check=False,
        )  # fmt: skip
        if done.returncode not in (0, 1):  # 1: unreadable files, or ignored ones we named
            return None
        warning = _add_warning(decode(done.stderr)) if done.returncode else None
        return Added(changed_index=True, warning=warning)


_IGNORED_HEADER = "The following paths are ignored by one of your .gitignore files:"


def _add_warning(stderr: str) -> str | None:
    """git add's first complaint, leaving out the ignored paths we named ourselves."""
    kept, listing = [], False
    for line in stderr.splitlines():
        if line.startswith(_IGNORED_HEADER):
            listing = True
        elif not (listing and not line.startswith(("error:", "warning:", "fatal:", "hint:"))):
            listing = False
            kept.append(line)
    return first_line("\n".join(kept))
