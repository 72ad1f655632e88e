"""Reading and writing state.json atomically, with a small disk reserve so the last record
lands whole on a full disk."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from unattended.contracts.paths import RunPaths
from unattended.contracts.state import RunState, StateFileError, parse_state
from unattended.supervisor.records.fsio import UnsafePath, atomic_write, open_private_file


def read_state(paths: RunPaths) -> RunState | None:
    """The saved state, or None when the project never ran. Raises StateFileError."""
    try:
        data = paths.state.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"{paths.state}: cannot read: {exc.strerror}") from None
    return parse_state(data, paths.state)


# Space kept aside so the final state can still be written when a worker fills the disk.
RESERVE_NAME = ".disk-reserve"
RESERVE_BYTES = 64 * 1024


def _reserve_path(paths: RunPaths) -> Path:
    return paths.records / RESERVE_NAME


def keep_reserve(paths: RunPaths) -> None:
    """Make sure the space reserve exists (real blocks, not a sparse file); best effort."""
    reserve = _reserve_path(paths)
    if reserve.exists() or not paths.records.is_dir():
        return
    try:
        fd = open_private_file(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except OSError:
        return
    try:
        os.write(fd, bytes(RESERVE_BYTES))
    except OSError:  # the disk is already too full: a partial reserve would only take space
        os.close(fd)
        reserve.unlink(missing_ok=True)
        return
    os.close(fd)


def release_reserve(paths: RunPaths) -> bool:
    """Give the reserve's space back; True when there was one to give."""
    try:
        _reserve_path(paths).unlink()
    except OSError:
        return False
    return True


def write_state(paths: RunPaths, state: RunState) -> None:
    """Atomic rewrite. On a full disk the reserve is given up so this record still lands whole
    (a run that ends on ENOSPC says so in state.json), then ENOSPC is raised all the same: the
    caller must know that the disk is full."""
    text = state.to_json()
    keep_reserve(paths)
    try:
        atomic_write(paths.state, text)
    except OSError as exc:
        if exc.errno != errno.ENOSPC or not release_reserve(paths):
            raise
        with contextlib.suppress(OSError):
            atomic_write(paths.state, text)
        write_state_view(paths, text)  # on a full disk too: the stale copy goes
        raise
    write_state_view(paths, text)


def write_state_view(paths: RunPaths, text: str) -> None:
    """The copy in ``.unattended/`` people read; best effort (a refusal is logged by fsio).
    A copy that cannot be rewritten (a full disk) is removed rather than left saying something
    no longer true; ``status`` reads the records either way."""
    if paths.state_view == paths.state:
        return
    try:
        atomic_write(paths.state_view, text, durable=False)  # the records' copy is the durable one
    except UnsafePath:
        pass
    except OSError:
        with contextlib.suppress(OSError):
            paths.state_view.unlink(missing_ok=True)  # unlink never follows a symlink










