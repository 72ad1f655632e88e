"""Which paths of a work tree changed since the last look, from Linux inotify.

The daemon's snapshots ask git about these paths only (``supervisor.git.snapshots``): without
them ``git add -A`` stats every file of the tree between two workers. Wherever the answer
could be incomplete, ``Changes.complete`` is False and the caller looks at everything: no
inotify (macOS, Windows), the kernel's queue overflowed, a watched directory was moved or
unmounted, a watch could not be added (``fs.inotify.max_user_watches``), a nested repository.
inotify's own blind spots stay: writes through ``mmap`` and writes through a hard link from
outside the tree are not reported, nor changes made on another machine (NFS).

Directories are walked without following symlinks, and no watch follows one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000

WATCH_MASK = (
    IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
)  # fmt: skip
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of NUL-padded name
MAX_PATHS = 20_000  # past this many changed paths one look at everything is as cheap


@dataclass
class Changes:
    """Top-relative paths whose entry changed (files, and directories created or removed);
    ``new_dirs``: directories that appeared, whose content nobody watched yet."""

    paths: set[str] = field(default_factory=set)
    new_dirs: set[str] = field(default_factory=set)
    complete: bool = True


class TreeWatch:
    """Watches every directory under ``top`` except ``skip`` (top-relative directories: the
    git dir, our state dir, wholly ignored trees). ``drain`` says what changed since the last
    ``drain``; the caller watches the new directories it cares about with ``add_tree``. Once
    an answer was incomplete the watch stays broken: the caller starts a new one."""

    def __init__(self, top: Path, fd: int, libc: ctypes.CDLL, skip: Collection[str]) -> None:
        self.top = top
        self._fd = fd
        self._libc = libc
        self.skip = set(skip)
        self._dirs: dict[int, str] = {}  # watch descriptor -> top-relative dir ('' is top)
        self._watched: set[str] = set()
        self.broken = False

    @classmethod
    def start(cls, top: Path, skip: Collection[str] = ()) -> TreeWatch | None:
        """A watch of the whole tree, or None where inotify is missing or refuses."""
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None
        watch = cls(top, fd, libc, skip)
        if not watch.add_tree(""):
            watch.close()
            return None
        return watch

    def add_tree(self, rel: str) -> bool:
        """Watch ``rel`` and every directory below it (not ``skip``, no symlink followed).
        False, and the watch broken, when a watch could not be added."""
        stack = [rel]
        while stack:
            here = stack.pop()
            if here in self.skip or here in self._watched:
                continue
            if not self._add(here):
                return False
            try:
                with os.scandir(self.top / here if here else self.top) as entries:
                    for entry in entries:
                        if entry.name == ".git" and here:
                            self.broken = True  # a nested repository: git's business
                            return False
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(f"{here}/{entry.name}" if here else entry.name)
            except OSError:
                continue  # gone or unreadable since: git will say what it finds there
        return True

    def is_watched(self, rel: str) -> bool:
        return rel in self._watched

    def add_dir(self, rel: str) -> bool:
        """Watch ``rel`` alone (not what is below it); False, and the watch broken, on failure."""
        self.skip.discard(rel)
        return rel in self._watched or self._add(rel)

    def _add(self, rel: str) -> bool:
        path = os.fsencode(self.top / rel if rel else self.top)
        wd = self._libc.inotify_add_watch(self._fd, path, WATCH_MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (2, 20):  # ENOENT, ENOTDIR: gone or replaced since it was listed
                return True
            self.broken = True
            return False
        self._dirs[wd] = rel
        self._watched.add(rel)
        return True

    def drain(self) -> Changes:
        """What changed since the last drain (the kernel queued it as it happened)."""
        changes = Changes()
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                self.broken = True
                break
            if not data:
                break
            self._parse(data, changes)
        if len(changes.paths) > MAX_PATHS:
            self.broken = True
        changes.complete = not self.broken
        return changes

    def _parse(self, data: bytes, changes: Changes) -> None:
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size
            name = os.fsdecode(data[offset : offset + length].rstrip(b"\0"))
            offset += length
            if mask & IN_Q_OVERFLOW:
                self.broken = True  # events were dropped
                continue
            where = self._dirs.get(wd)
            if mask & IN_IGNORED:  # the watch is gone: its directory was removed
                if where is not None:
                    self._dirs.pop(wd, None)
                    self._watched.discard(where)
                continue
            if where is None:
                continue
            if mask & (IN_MOVE_SELF | IN_UNMOUNT):
                self.broken = True  # what was under it now has other names
                continue
            if mask & IN_DELETE_SELF:
                continue  # its parent reports the removal
            path = f"{where}/{name}" if where else name
            if mask & IN_ISDIR:
                if mask & IN_MOVED_FROM:
                    self.broken = True  # the watches below it now name the wrong paths
                elif mask & (IN_CREATE | IN_MOVED_TO):
                    changes.new_dirs.add(path)
            changes.paths.add(path)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
            self.broken = True


def available() -> bool:
    """Can this OS watch a tree (Linux inotify)?"""
    return _libc() is not None


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The running program's own symbols hold libc's (glibc and musl alike); find_library
        # would run `ldconfig -p`, a child process for a name we already have.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc
