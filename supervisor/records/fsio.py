"""File-system effects behind one seam, so tests can inject ENOSPC, EPERM or a clock jump, and
so that no write of ours can be steered outside our own directories.

Every file another process reads is written through :func:`atomic_write`: temp file in the same
directory, fsync, ``os.replace``, fsync of the directory. A reader never sees half a file, and
after a power cut it sees either the old or the new version.

The repository may be hostile (a clone that tracks ``.unattended/run.log`` as a symlink to
``~/.bashrc``, a worker that plants one). So every write goes through :func:`open_private_dir`
and :func:`open_private_file`: the path's *private part* — from its last component named
``.unattended`` (ours in the work tree and in the git dir) down — is walked one component at a
time with ``O_NOFOLLOW``, relative to directory file descriptors opened and checked on the way
(a directory, owned by us, forced to 0700). The part above it is the user's own path and is
followed as given; a path without such a component (the lock in the git dir, the user's state
dir) has its directory as that part, or an explicit ``anchor``. A file is opened relative to its
checked directory with ``O_NOFOLLOW`` and refused unless it is a regular file of ours with one
link (a planted hard link would otherwise be written through); ``O_TRUNC`` is applied only after
those checks. A refusal raises :class:`UnsafePath` and is reported to the listener the daemon
sets (:func:`on_refusal`), which logs it.

Standard library only, and ``pathlib`` only for type hints: the context-meter hook imports this.
"""

from __future__ import annotations

import errno
import os
import stat
import time as _time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and pathlib cost the hook milliseconds; annotations are strings here
    from collections.abc import Callable
    from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# The name that starts a private tree: <project>/.unattended and <git dir>/.unattended.
PRIVATE_ROOT_NAME = ".unattended"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class SystemCalls:
    """The system calls the supervisor makes; replace attributes in tests to inject faults."""

    open = staticmethod(os.open)
    write = staticmethod(os.write)
    fsync = staticmethod(os.fsync)
    replace = staticmethod(os.replace)
    close = staticmethod(os.close)
    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


sys_calls = SystemCalls()


class UnsafePath(OSError):
    """A write refused: a symlink, a hard link or something not ours inside our own tree."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(errno.ELOOP, why, path)
        self.path, self.why = path, why

    def __str__(self) -> str:
        return f"refused to write {self.path}: {self.why}"


_listener: list[Callable[[UnsafePath], None]] = []


def on_refusal(listener: Callable[[UnsafePath], None] | None) -> None:
    """Call ``listener`` with every refusal (the daemon logs them); None removes it."""
    _listener.clear()
    if listener is not None:
        _listener.append(listener)


def _refuse(path: str, why: str) -> UnsafePath:
    exc = UnsafePath(path, why)
    for listener in list(_listener):
        try:  # noqa: SIM105 - contextlib costs the hook an import
            listener(exc)
        except Exception:  # reporting a refusal must never be what ends the run
            pass
    return exc


def split_private(
    path: str | os.PathLike[str], anchor: str | os.PathLike[str] | None = None
) -> tuple[str, list[str]]:
    """(anchor, components below it): the anchor is the user's part of ``path``, followed as
    given; the components start at the last one named PRIVATE_ROOT_NAME, or below ``anchor``
    when one is given. Without either, the whole path is the user's."""
    text = os.path.abspath(os.fspath(path))
    if anchor is not None:
        base = os.path.abspath(os.fspath(anchor))
        rel = os.path.relpath(text, base)
        if rel == os.curdir:
            return base, []
        if rel.startswith(os.pardir):
            raise ValueError(f"{text} is not under {base}")
        return base, rel.split(os.sep)
    parts = text.split(os.sep)
    starts = [i for i, part in enumerate(parts) if part == PRIVATE_ROOT_NAME and i > 0]
    if not starts:
        return text, []
    cut = starts[-1]
    return os.sep.join(parts[:cut]) or os.sep, parts[cut:]


def _check_dir(fd: int, shown: str) -> None:
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(shown, "not a directory")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise _refuse(shown, f"the directory is owned by uid {st.st_uid}, not by you")
    if stat.S_IMODE(st.st_mode) != PRIVATE_DIR_MODE:
        os.fchmod(fd, PRIVATE_DIR_MODE)  # a clone or an old version may have left it 0755


def _open_child_dir(parent: int, name: str, shown: str, create: bool) -> int:
    flags = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
    for _attempt in range(2):
        try:
            fd = os.open(name, flags, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            try:  # noqa: SIM105
                os.mkdir(name, PRIVATE_DIR_MODE, dir_fd=parent)
            except FileExistsError:
                pass  # made by someone else a moment ago: open and check it all the same
            continue
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
                why = "a symlink" if _is_link(parent, name) else "not a directory"
                raise _refuse(shown, f"{why}: the daemon never writes through one") from None
            raise
        try:
            _check_dir(fd, shown)
        except BaseException:
            os.close(fd)
            raise
        return fd
    raise FileNotFoundError(errno.ENOENT, "vanished while being created", shown)


def _is_link(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode)
    except OSError:
        return False


def open_private_dir(
    path: str | os.PathLike[str],
    create: bool = True,
    anchor: str | os.PathLike[str] | None = None,
) -> int:
    """A checked directory fd for ``path`` (created 0700 as needed); the caller closes it."""
    anchor, private = split_private(path, anchor)
    if create and not os.path.isdir(anchor):
        os.makedirs(anchor, PRIVATE_DIR_MODE, exist_ok=True)  # the user's part, followed
    fd = os.open(anchor, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    shown = anchor
    try:
        for name in private:
            shown = os.path.join(shown, name)
            child = _open_child_dir(fd, name, shown, create)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_in_dir(dir_fd: int, name: str, flags: int, shown: str, mode: int) -> int:
    """Open ``name`` in a checked directory: no symlink, a regular file of ours, one link;
    ``O_TRUNC`` only once that is known. An existing file keeps its mode: the 0700 directory
    is what keeps other users out."""
    truncate = bool(flags & os.O_TRUNC)
    flags = (flags & ~os.O_TRUNC) | _NOFOLLOW | _CLOEXEC
    try:
        fd = sys_calls.open(name, flags, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise _refuse(shown, "a symlink: the daemon never writes through one") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(shown, "not a regular file")
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            raise _refuse(shown, f"the file is owned by uid {st.st_uid}, not by you")
        if st.st_nlink > 1:
            raise _refuse(shown, f"a hard link ({st.st_nlink} names): it may be a file elsewhere")
        if truncate:
            os.ftruncate(fd, 0)
    except BaseException:
        sys_calls.close(fd)
        raise
    return fd


def open_private_file(
    path: str | os.PathLike[str],
    flags: int,
    mode: int = PRIVATE_FILE_MODE,
    anchor: str | os.PathLike[str] | None = None,
) -> int:
    """``os.open`` for a file in our own tree, refusing symlinks and hard links (see above)."""
    text = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(text)
    dir_fd = open_private_dir(directory, create=bool(flags & os.O_CREAT), anchor=anchor)
    try:
        return open_in_dir(dir_fd, name, flags, text, mode)
    finally:
        os.close(dir_fd)


def read_private_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a file of our own tree that a worker writes (handoff notes) without following a
    symlink planted in its place. FileNotFoundError when absent."""
    fd = open_private_file(path, os.O_RDONLY, PRIVATE_FILE_MODE)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def ensure_private_dir(path: Path | str) -> None:
    """Create ``path`` mode 0700, or check and force an existing one to 0700 (the raw worker
    stream can hold secrets); UnsafePath when part of our tree is a symlink."""
    os.close(open_private_dir(path))


def atomic_write(
    path: Path | str, data: str | bytes, mode: int = PRIVATE_FILE_MODE, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically and (unless ``durable`` is False: a copy for
    reading, remade from the real file at the next write) durably.

    On any failure (ENOSPC included) the temp file is removed and the old file stays intact.
    The rename replaces whatever entry is at ``path`` (a planted symlink included) without
    following it; the temp file is created exclusively, so a planted one is never written
    through.
    """
    payload = data.encode() if isinstance(data, str) else data
    text = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(text)
    tmp = f".{name}.{os.getpid()}.tmp"
    dir_fd = open_private_dir(directory)
    try:
        fd = _create_exclusive(dir_fd, tmp, os.path.join(directory, tmp), mode)
        try:
            view = memoryview(payload)
            while view:
                written = sys_calls.write(fd, view)
                view = view[written:]
            if durable:
                sys_calls.fsync(fd)
        except BaseException:
            sys_calls.close(fd)
            _unlink_quietly(dir_fd, tmp)
            raise
        sys_calls.close(fd)
        try:
            sys_calls.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            _unlink_quietly(dir_fd, tmp)
            raise
        if durable:
            sys_calls.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _create_exclusive(dir_fd: int, name: str, shown: str, mode: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    try:
        return sys_calls.open(name, flags, mode, dir_fd=dir_fd)
    except FileExistsError:
        # A temp file left by a crash of ours, or something planted: remove the entry itself
        # (unlink never follows a symlink) and create ours.
        os.unlink(name, dir_fd=dir_fd)
        return sys_calls.open(name, flags, mode, dir_fd=dir_fd)


def _unlink_quietly(dir_fd: int, name: str) -> None:
    try:  # noqa: SIM105
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def append_line(path: Path | str, line: str, mode: int = PRIVATE_FILE_MODE) -> None:
    """Append one line (for JSONL records); O_APPEND makes each write land whole at the end."""
    fd = open_private_file(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
    try:
        sys_calls.write(fd, (line.rstrip("\n") + "\n").encode())
    finally:
        sys_calls.close(fd)
