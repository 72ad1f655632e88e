"""A per-user pool of worker slots (``max_parallel_workers``) and staggered worker starts.

Several daemons of one user may run at once; ``max_parallel_workers`` (usually set in the user
config, ``$XDG_CONFIG_HOME/unattended/config.toml``) caps how many *workers* run together.
Slots are files ``<state dir>/slots/slot-<n>.lock``; a daemon holds ``flock(LOCK_EX)`` on one
while its worker runs. The kernel drops the lock when the daemon dies, even by SIGKILL, so a
crash can never leak a slot. The fd is close-on-exec: a worker never inherits it.

Every daemon takes a slot, limited or not, so each one counts every running worker. A daemon
with limit L starts a worker only while fewer than L slots are held (by anyone), which keeps the
rule sound when projects set different limits. Counting and taking happen under a short
``slots/.guard`` lock so two daemons cannot both take the last slot.

When the state directory is unusable the pool fails *open* (``try_acquire`` returns True and
``last_error`` says why): a broken ``~/.local/state`` must not stall a night's work.

Stagger: ``stagger_delay`` reserves a start time at least ``min_gap_s`` after the latest start
reserved by any *other* daemon, in ``<state dir>/last-start`` (a small JSON map updated under
its own lock), so a herd of starts (many runs begun at once, or waking at the same usage-limit
reset) does not trip rate limits. The loop asks for it only then (``start_stagger_s``); a
daemon's ordinary iterations neither wait for nor reserve a start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
import uuid
from pathlib import Path

SLOTS_SUBDIR = "slots"
GUARD_NAME = ".guard"
LAST_START_NAME = "last-start"
LOCK_WAIT_S = 1.0  # most we wait for the guard lock (others hold it for microseconds)
FORGET_AFTER_S = 600.0  # reservations older than this are dropped from last-start


class WorkerSlots:
    def __init__(self, limit: int | None, state_dir: Path) -> None:
        self.limit = limit
        self.state_dir = Path(state_dir)
        self.slots_dir = self.state_dir / SLOTS_SUBDIR
        self.fd: int | None = None
        self.index: int | None = None
        self.last_error: str | None = None  # why the pool failed open, for run.log
        self.in_use = 0  # slots held by other daemons at the last try_acquire
        self.token = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def held(self) -> bool:
        return self.fd is not None

    def try_acquire(self) -> bool:
        """Take a slot if the limit allows; never blocks. True when a worker may start now."""
        if self.fd is not None:
            return True
        self.last_error = None
        try:
            return self._acquire()
        except OSError as exc:
            self.last_error = f"worker slot pool in {self.slots_dir} unusable: {exc}"
            return True

    def _acquire(self) -> bool:
        from unattended.supervisor.records.fsio import ensure_private_dir

        ensure_private_dir(self.slots_dir)
        with _locked(self.slots_dir / GUARD_NAME, LOCK_WAIT_S) as guard:
            if guard is None:
                return False  # another daemon is mid-count; try again next tick
            held_by_others, free = self._scan()
            self.in_use = held_by_others
            if self.limit is not None and held_by_others >= self.limit:
                if free is not None:
                    os.close(free[1])
                return False
            index, fd = free if free is not None else self._new_slot()
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.fd, self.index = fd, index
            return True

    def _scan(self) -> tuple[int, tuple[int, int] | None]:
        """(slots held by others, (index, locked fd) of the first free slot or None)."""
        held, free = 0, None
        for index in sorted(_slot_indices(self.slots_dir)):
            fd = _open(self.slots_dir / f"slot-{index}.lock")
            if not _try_lock(fd):
                held += 1
                os.close(fd)
            elif free is None:
                free = (index, fd)
            else:
                os.close(fd)  # closing our only fd drops the lock we just took
        return held, free

    def _new_slot(self) -> tuple[int, int]:
        taken = _slot_indices(self.slots_dir)
        index = next(n for n in range(len(taken) + 1) if n not in taken)
        fd = _open(self.slots_dir / f"slot-{index}.lock")
        if not _try_lock(fd):  # cannot happen under the guard, unless a non-guarded writer
            os.close(fd)
            raise OSError(errno.EAGAIN, f"slot-{index}.lock locked by another process")
        return index, fd

    def release(self) -> None:
        """Give the slot back (idempotent). Call when the worker has exited."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd, self.index = None, None

    def stagger_delay(self, now: float, min_gap_s: float = 3.0) -> float:
        """Seconds to wait before spawning so starts across daemons are ``min_gap_s`` apart.

        ``now`` is wall-clock (time.time()): the reservations are shared between processes.
        The returned instant is reserved for this daemon; waiting less would defeat it.
        """
        try:
            return self._reserve(now, min_gap_s)
        except OSError as exc:
            self.last_error = f"worker start stagger in {self.state_dir} unusable: {exc}"
            return 0.0

    def _reserve(self, now: float, min_gap_s: float) -> float:
        from unattended.supervisor.records.fsio import ensure_private_dir

        ensure_private_dir(self.state_dir)
        with _locked(self.state_dir / LAST_START_NAME, LOCK_WAIT_S * 3) as fd:
            if fd is None:
                return 0.0
            starts = _read_starts(fd)
            horizon = max(3600.0, min_gap_s * 100)  # later reservations: a clock jump back
            starts = {
                key: at
                for key, at in starts.items()
                if now - FORGET_AFTER_S < at < now + horizon and key != self.token
            }
            start = max([now, *(at + min_gap_s for at in starts.values())])
            starts[self.token] = start
            data = json.dumps(starts, sort_keys=True).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            return start - now


def _slot_indices(directory: Path) -> set[int]:
    found = set()
    for path in directory.glob("slot-*.lock"):
        with contextlib.suppress(ValueError):
            found.add(int(path.name.removeprefix("slot-").removesuffix(".lock")))
    return found


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _locked(path: Path, wait_s: float):  # noqa: ANN202 - yields the locked fd, or None
    """flock ``path`` exclusively, polling up to ``wait_s`` (a stopped process cannot hang us)."""
    fd = _open(path)
    try:
        end = time.monotonic() + wait_s
        while not _try_lock(fd):
            if time.monotonic() >= end:
                yield None
                return
            time.sleep(0.005)
        yield fd
    finally:
        os.close(fd)


def _read_starts(fd: int) -> dict[str, float]:
    raw = b""
    while chunk := os.pread(fd, 65536, len(raw)):
        raw += chunk
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}  # torn by a crash mid-write: forget the old reservations
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}
