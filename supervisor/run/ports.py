"""The relay loop's collaborators, each behind a small interface with a real and a quiet
implementation: the clock, the worker factory, the git evidence and the service manager.

The daemon passes the real ones; tests pass fakes (see ``tests/supervisor/run/driver.py``), so
the loop runs in-process against a fake clock and scripted workers. The sleep inhibitor's
interface is :class:`unattended.platform_adapters.inhibit.Inhibitor`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from unattended.contracts.iteration import GitPoint
from unattended.contracts.settings import Settings
from unattended.supervisor.records.fsio import sys_calls

if TYPE_CHECKING:
    from unattended.supervisor.worker.process import WorkerOutcome, WorkerSpec


class Clock(Protocol):
    def time(self) -> float: ...  # wall clock, epoch seconds

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock, read through the ``sys_calls`` seam (tests may jump it there)."""

    def time(self) -> float:
        return sys_calls.time()

    def monotonic(self) -> float:
        return sys_calls.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ServiceNotifier(Protocol):
    """The systemd notify socket (``platform_adapters.sd_notify.SdNotifier``)."""

    @property
    def watchdog_interval_s(self) -> float | None: ...

    def status(self, text: str) -> object: ...

    def watchdog_if_due(self, now: float) -> object: ...

    def stopping(self) -> object: ...


class NoServiceNotifier:
    """Not under a service manager: nothing to tell."""

    watchdog_interval_s: float | None = None

    def status(self, text: str) -> None:
        del text

    def watchdog_if_due(self, now: float) -> None:
        del now

    def stopping(self) -> None:
        pass


class WorkerHandle(Protocol):
    """A running worker as the loop sees it (``supervisor.worker.process.Worker``)."""

    pid: int

    @property
    def finished(self) -> bool: ...

    @property
    def stopping(self) -> bool: ...

    def pump(self, timeout: float) -> None: ...

    def stop(self, reason: str) -> None: ...

    def escalate(self) -> None: ...

    def record(self) -> WorkerOutcome: ...

    def seen_identities(self) -> list[tuple[int, float]]:
        """(pid, start time) of every process of its tree seen so far, alive now."""
        ...

    def kill_now(self) -> None: ...


# (spec, should_escalate) -> a started worker; raises SpawnError when it cannot start.
WorkerFactory = Callable[["WorkerSpec", Callable[[], bool]], WorkerHandle]


def spawn_worker(spec: WorkerSpec, should_escalate: Callable[[], bool]) -> WorkerHandle:
    from unattended.supervisor.worker.process import Worker

    return Worker.spawn(spec, should_escalate=should_escalate)


class Slots(Protocol):
    """This user's pool of ``max_parallel_workers`` (``supervisor.run.slots.WorkerSlots``)."""

    last_error: str | None

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def stagger_delay(self, now: float, min_gap_s: float) -> float: ...


class GitEvidence(Protocol):
    """What git shows around one iteration: the supervisor's evidence of progress."""

    def point(self, number: int, phase: str, warn: Callable[[str], None]) -> GitPoint: ...

    def commits(self, before: str | None, after: str | None) -> tuple[int, int]: ...

    def done_when(
        self, command: str, env: Mapping[str, str], abort: Callable[[], bool] | None = None
    ) -> bool: ...

    def commit_subjects(self, before: str | None, after: str | None) -> list[tuple[str, str]]: ...

    def prune_snapshots(self, keep_run_ids: Collection[str], only_run_ids: Collection[str]) -> int:
        """Delete this work tree's snapshot refs of ``only_run_ids`` not in ``keep_run_ids``."""
        ...


@dataclass(frozen=True)
class RepoGitEvidence:
    """The real repository: snapshots, HEAD, commit counts and the ``--done-when`` command."""

    project: Path
    git_dir: Path
    run_id: str
    settings: Settings

    def point(self, number: int, phase: str, warn: Callable[[str], None]) -> GitPoint:
        from unattended.supervisor.run.iteration import git_point

        return git_point(
            self.project, self.git_dir, self.run_id, number, phase, self.settings, warn
        )

    def commits(self, before: str | None, after: str | None) -> tuple[int, int]:
        from unattended.supervisor.run.iteration import count_commits

        return count_commits(self.project, before, after)

    def done_when(
        self, command: str, env: Mapping[str, str], abort: Callable[[], bool] | None = None
    ) -> bool:
        from unattended.supervisor.run.iteration import run_done_when

        return run_done_when(command, self.project, env, abort=abort)

    def commit_subjects(self, before: str | None, after: str | None) -> list[tuple[str, str]]:
        from unattended.supervisor.git.facts import commit_range_summary

        return commit_range_summary(self.project, before, after)

    def prune_snapshots(self, keep_run_ids: Collection[str], only_run_ids: Collection[str]) -> int:
        from unattended.supervisor.git.snapshots import Snapshotter, prune_snapshots, worktree_id

        worktree = worktree_id(self.git_dir)
        pruned = prune_snapshots(self.project, keep_run_ids, worktree, only_run_ids)
        (self.git_dir / Snapshotter.INDEX_NAME).unlink(missing_ok=True)
        return pruned
