"""The iteration a daemon died in, rebuilt on ``--resume`` from what it left on disk: its raw
log ``iterations/NNNN.jsonl`` (a result event there carries the usage), its stderr file, and
git as it is now. Its transcript pricing, when the raw log holds no result, is the loop's
(``RelayLoop._usage_without_result``), as for any worker killed before its result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from unattended.contracts.iteration import GitPoint, IterationRecord
from unattended.contracts.paths import RunPaths
from unattended.contracts.state import RunState


@dataclass(frozen=True)
class CrashedWorker:
    """What the dead daemon's state.json said about the iteration it was in."""

    number: int
    started_at: datetime | None  # None: the worker had already exited (or never started)
    last_seen: datetime  # the dead daemon's last state write


def crashed_worker(old: RunState) -> CrashedWorker | None:
    """The iteration the dead daemon launched but never recorded, else None."""
    recorded = old.last_iteration.number if old.last_iteration else 0
    if old.status.terminal or old.iteration <= recorded:
        return None
    return CrashedWorker(old.iteration, old.worker_started_at, old.updated_at)


def crashed_record(
    paths: RunPaths, crashed: CrashedWorker, before: str | None, after: str | None
) -> IterationRecord:
    """The record of the iteration ``crashed``, from its raw log and stderr file. ``before`` and
    ``after`` are HEAD before it (the previous iteration's) and now: progress is what git shows.
    """
    from unattended.safety.classify import DAEMON_DIED
    from unattended.supervisor.run.iteration import record_from_worker
    from unattended.supervisor.worker.process import WorkerOutcome, last_line
    from unattended.supervisor.worker.stream import StreamReader

    reader = StreamReader()
    raw = paths.iteration_stdout(crashed.number)
    try:
        with raw.open("rb") as stream:
            while chunk := stream.read(1 << 16):
                reader.feed(chunk)
    except OSError:
        pass  # no raw log (a worker's `git clean`, or it never started): nothing to price
    reader.finish()
    outcome = WorkerOutcome(
        exit_code=None,
        ended_by=DAEMON_DIED,
        last_stderr_line=last_line(paths.iteration_stderr(crashed.number)),
        stream=reader.facts,
    )
    started = crashed.started_at or crashed.last_seen
    ended = max(started, crashed.last_seen)
    before_point = GitPoint(head=before if before is not None else after)
    record = record_from_worker(
        crashed.number,
        started.timestamp(),
        ended.timestamp(),
        outcome,
        before_point,
        GitPoint(head=after),
    )
    return record
