"""Process trees, the half of the process module that knows them: descendants, the one kill
policy for a whole tree, orphan reaping, the subreaper, and whether a recorded PID is ours.

Every child starts through ``platform_adapters.process``; this module ends them. The Claude CLI's
Bash tool runs commands in sessions of their own, so ``killpg`` on the worker misses them:
descendants are found by walking parent links (psutil) while the tree is alive, and on Linux the
daemon is a child subreaper so tool processes that detach are re-parented to it rather than to
init. Every signal goes through ``_signal``, which checks the process's creation time first, so a
recycled PID is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
MARKER_VAR = "UNATTENDED_RUN_ID"  # set in every child's environment: the run it belongs to
SPAWN_VAR = "UNATTENDED_SPAWN"  # one token per started child: finds what that child detached
CREATE_TIME_SLACK_S = 0.01  # psutil's create times of one process agree to this within a boot
_FREEZE_ROUNDS = 8
_REAP_WAIT_S = 2.0
_protected: set[int] = set()  # our children whose exit status belongs to someone else


@dataclass
class EndReport:
    """How ending a tree went."""

    root_pid: int
    interrupted: bool = False  # the first signal (SIGINT for a worker) reached the root
    exited_in_grace: bool = False  # the root exited by itself after the SIGINT
    escalated: bool = False  # escalate_now() cut the grace short
    root_exit_code: int | None = None  # when we reaped the root: negative = signal
    killed: list[int] = field(default_factory=list)  # got SIGKILL
    survivors: list[int] = field(default_factory=list)  # still alive at the end (should be none)
    duration_s: float = 0.0


def protect(pid: int) -> None:
    """Keep ``reap_orphans`` away from this child: its owner reaps it with its own waitpid."""
    _protected.add(pid)


def protected() -> frozenset[int]:
    """Our children started on purpose (the worker, every helper): never anyone's orphans."""
    return frozenset(_protected)


def unprotect(pid: int) -> None:
    _protected.discard(pid)


def process(pid: int) -> psutil.Process | None:
    """A handle that remembers the creation time (so PID reuse is noticed), or None if gone."""
    import psutil

    try:
        return psutil.Process(pid)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def snapshot_tree(pid: int) -> list[psutil.Process]:
    """All live descendants of ``pid`` by parent links, including those in other sessions.
    Taken every second while a worker runs: on Linux from each thread's ``children`` file,
    which visits the tree only (psutil reads the stat file of every process on the machine)."""
    import psutil

    pids = _descendant_pids(pid)
    if pids is None:
        try:
            return psutil.Process(pid).children(recursive=True)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return []
    found = []
    for child in pids:
        try:
            found.append(psutil.Process(child))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _descendant_pids(pid: int) -> list[int] | None:
    """Descendants by /proc/PID/task/TID/children (Linux with CONFIG_PROC_CHILDREN), or None
    where there is no such file. A process that ends meanwhile is simply not listed."""
    if not _CHILDREN_FILES:
        return None
    found: list[int] = []
    seen = {pid}
    stack = [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # gone
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except (OSError, ValueError):
                continue
            kids = [k for k in kids if k not in seen]  # a PID reused meanwhile: no loops
            seen.update(kids)
            found += kids
            stack += kids
    return found


def adopted_since(since: float, exclude: Collection[int] = ()) -> list[psutil.Process]:
    """Processes re-parented to us (as a subreaper) created at or after ``since`` (a psutil
    create_time), with their descendants: orphans of a tree we started then. Empty when we are
    not a subreaper, since then orphans go to init and none of our other children qualify."""
    import psutil

    if not is_subreaper():
        return []
    found: list[psutil.Process] = []
    for child in psutil.Process().children():
        try:
            if child.pid in exclude or child.create_time() < since:
                continue
            found.append(child)
            found.extend(child.children(recursive=True))
        except psutil.Error:
            continue
    return found


def is_gone(proc: psutil.Process) -> bool:
    """Dead, recycled or a zombie (a zombie runs nothing; its parent has to reap it)."""
    import psutil

    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _signal(proc: psutil.Process, sig: int) -> bool:
    """Send ``sig`` unless the process is gone or its PID now names another process."""
    import psutil

    try:
        if not proc.is_running():  # also compares creation times: PID reuse
            return False
        proc.send_signal(sig)
        return True
    except psutil.Error:
        return False


def signal_all(procs: Iterable[psutil.Process], sig: int) -> list[int]:
    """Signal each live process; returns the PIDs signalled."""
    return [p.pid for p in procs if _signal(p, sig)]


def freeze_and_kill(
    procs: Iterable[psutil.Process], root: psutil.Process | None = None
) -> list[int]:
    """SIGSTOP everything (so nothing forks away while we look), add children that appeared
    meanwhile, then SIGKILL the descendants and finally the root. Returns the PIDs killed."""
    import psutil

    frozen: dict[psutil.Process, None] = {}
    pending = [p for p in procs if p != root]
    if root is not None:
        pending.append(root)
    for _ in range(_FREEZE_ROUNDS):
        fresh = [p for p in pending if p not in frozen and _signal(p, signal.SIGSTOP)]
        if not fresh:
            break
        frozen.update(dict.fromkeys(fresh))
        pending = []
        for proc in fresh:
            try:
                pending.extend(proc.children(recursive=True))
            except psutil.Error:
                continue
    order = [p for p in frozen if p != root] + ([root] if root in frozen else [])
    return signal_all(order, signal.SIGKILL)


def reap_ours(procs: Iterable[psutil.Process]) -> list[int]:
    """Reap the given processes that are our children and have exited (not protected ones)."""
    reaped = []
    for proc in procs:
        if proc.pid in _protected:
            continue
        try:
            pid, _ = os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if pid:
            reaped.append(pid)
    return reaped


def reap_until_gone(procs: list[psutil.Process], limit_s: float = _REAP_WAIT_S) -> None:
    """SIGKILL takes a moment: reap our children among ``procs`` until none is left."""
    deadline = time.monotonic() + limit_s
    while True:
        reap_ours(procs)
        if all(is_gone(p) for p in procs) or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a process group, ignoring that it may be gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def reap_orphans(skip: Collection[int] = ()) -> list[int]:
    """As a subreaper, reap adopted zombie children. Never ``waitpid(-1)``: that could steal
    the exit status of the worker (or of any protected PID, or one in ``skip``)."""
    if not _child_exited():
        return []  # the usual case (our own helpers, reaped by their owners): no /proc scan
    import psutil

    reaped = []
    for child in psutil.Process().children():
        if child.pid in _protected or child.pid in skip:
            continue
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                continue
            pid, _ = os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue
        if pid:
            reaped.append(pid)
    return reaped


def _child_exited() -> bool:
    """Has any child of ours exited and not been reaped? A peek (WNOWAIT): nothing is reaped."""
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False  # no children at all
    except (AttributeError, OSError):
        return True  # no waitid here: look the long way


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def is_subreaper() -> bool:
    """Whether orphans of our descendants are re-parented to us (Linux only)."""
    prctl = _prctl()
    if prctl is None:
        return False
    import ctypes

    flag = ctypes.c_int(0)
    return prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value != 0


def become_subreaper() -> bool:
    """Make orphaned descendants our children so they can still be found and reaped (Linux
    >= 3.4; the daemon does this once, at start). Returns whether it took effect."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    return is_subreaper()


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


def end_tree(
    root_pid: int,
    grace_s: float,
    known: Iterable[psutil.Process] = (),
    escalate_now: Callable[[], bool] = lambda: False,
    *,
    first_signal: int = signal.SIGINT,
    poll_s: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
) -> EndReport:
    """The one kill policy, blocking: ``first_signal`` to the root (SIGINT is the Claude CLI's
    clean stop; helpers get SIGTERM), wait up to ``grace_s`` while snapshotting its descendants,
    then SIGKILL every descendant ever seen (those in sessions of their own and adopted orphans
    too) and the root, and reap what is ours. ``escalate_now()`` returning True skips the rest
    of the grace. If the root is our child it is reaped here (``root_exit_code``), so call this
    before reaping it yourself."""
    started = clock()
    report = EndReport(root_pid=root_pid)
    root = process(root_pid)
    seen: dict[psutil.Process, None] = dict.fromkeys(known)
    if root is not None and not is_gone(root):
        seen.update(dict.fromkeys(snapshot_tree(root_pid)))
        report.interrupted = _signal(root, first_signal)
    ours = root is not None and _is_our_child(root)
    deadline = started + grace_s
    while root is not None and clock() < deadline:
        if _root_done(root, ours, report):
            report.exited_in_grace = True
            break
        if escalate_now():
            report.escalated = True
            break
        seen.update(dict.fromkeys(snapshot_tree(root_pid)))
        time.sleep(poll_s)
    if root is not None and report.root_exit_code is None and not is_gone(root):
        seen.update(dict.fromkeys(snapshot_tree(root_pid)))
    if root is not None:
        # Orphans of this tree; never the children we started on purpose beside it (a helper).
        adopted = adopted_since(_create_time(root), exclude={root_pid, *_protected})
        seen.update(dict.fromkeys(adopted))
    report.killed = freeze_and_kill(seen, root if report.root_exit_code is None else None)
    _finish_reaping(root, ours, report, list(seen), clock)
    report.duration_s = clock() - started
    return report


def _create_time(proc: psutil.Process) -> float:
    import psutil

    try:
        return proc.create_time()
    except psutil.Error:
        return 0.0


def _is_our_child(proc: psutil.Process) -> bool:
    import psutil

    try:
        return proc.ppid() == os.getpid()
    except psutil.Error:
        return False


def _root_done(root: psutil.Process, ours: bool, report: EndReport) -> bool:
    """Has the root exited? Reaps it when it is our child."""
    if not ours:
        return is_gone(root)
    try:
        pid, status = os.waitpid(root.pid, os.WNOHANG)
    except ChildProcessError:
        return True
    if pid:
        report.root_exit_code = _exit_code(status)
        return True
    return False


def _finish_reaping(
    root: psutil.Process | None,
    ours: bool,
    report: EndReport,
    seen: list[psutil.Process],
    clock: Callable[[], float],
) -> None:
    deadline = clock() + _REAP_WAIT_S
    while True:
        if root is not None and report.root_exit_code is None and ours:
            _root_done(root, ours, report)
        reap_ours(seen)
        alive = [p for p in seen if not is_gone(p)]
        if root is not None and not is_gone(root) and root not in alive:
            alive.append(root)
        if not alive or clock() >= deadline:
            report.survivors = [p.pid for p in alive]
            return
        time.sleep(0.02)


# ----- what a recorded PID is, after the daemon that recorded it died ---------------------------
def identity(proc: psutil.Process) -> tuple[int, float] | None:
    """(pid, create time) as state.json records a descendant; None when it is gone."""
    import psutil

    try:
        return proc.pid, proc.create_time()
    except psutil.Error:
        return None


def _environ_value(proc: psutil.Process, name: str) -> str | None | bool:
    """The variable's value in the process's environment, None when unset, False when the
    environment cannot be read (another user's process, or a platform without it)."""
    import psutil

    try:
        return proc.environ().get(name)
    except (psutil.AccessDenied, psutil.ZombieProcess, NotImplementedError, OSError):
        return False
    except psutil.Error:
        return None


def is_ours(pid: int, create_time: float | None, run_id: str, pgids: Collection[int] = ()) -> bool:
    """Provably a process of run ``run_id``: the same start time as recorded AND our marker in
    its environment (``UNATTENDED_RUN_ID``) or, where the environment cannot be read, membership
    of one of the run's process groups. A forged state.json naming an unrelated process with its
    real start time fails the second test."""
    proc = process(pid)
    if proc is None or create_time is None or is_gone(proc) or pid == os.getpid():
        return False
    created = _create_time(proc)
    if abs(created - create_time) > CREATE_TIME_SLACK_S:
        return False  # a reused PID
    marker = _environ_value(proc, MARKER_VAR)
    if marker is not False:
        return bool(run_id) and marker == run_id
    try:
        return os.getpgid(pid) in pgids
    except OSError:
        return False


def marked(name: str, value: str, since: float) -> list[psutil.Process]:
    """Live processes created at or after ``since`` (a psutil create time) whose environment has
    ``name=value``: what a child of ours detached into a session of its own, orphaned to init."""
    import psutil

    found = []
    for proc in psutil.process_iter(["create_time"]):
        created = proc.info.get("create_time")
        if created is None or created < since - CREATE_TIME_SLACK_S or proc.pid == os.getpid():
            continue
        if _environ_value(proc, name) == value and not is_gone(proc):
            found.append(proc)
    return found


def end_recorded(
    recorded: Iterable[tuple[int, float]], run_id: str, pgids: Collection[int] = ()
) -> list[int]:
    """Kill the processes a crashed daemon recorded that are still provably ours (see
    ``is_ours``), with whatever they started since. Returns the PIDs killed."""
    targets: dict[psutil.Process, None] = {}
    for pid, created in recorded:
        if is_ours(pid, created, run_id, pgids):
            proc = process(pid)
            if proc is not None:
                targets[proc] = None
                targets.update(dict.fromkeys(snapshot_tree(pid)))
    if not targets:
        return []
    killed = freeze_and_kill(targets)
    reap_until_gone(list(targets))
    return killed


def still_alive(
    recorded: Iterable[tuple[int, float]], run_id: str, pgids: Collection[int] = ()
) -> list[int]:
    """The recorded processes still alive and provably of run ``run_id`` (for ``status``)."""
    return [pid for pid, created in recorded if is_ours(pid, created, run_id, pgids)]
