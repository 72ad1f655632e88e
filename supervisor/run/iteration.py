"""One iteration, start to end: git evidence, the worker's argv and env, the record.

Gathers facts only; deciding what they mean is ``safety``'s job.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from unattended.contracts.iteration import GitPoint, IterationRecord, RateLimitSeen
from unattended.contracts.names import ENV_ITERATION, ENV_PROJECT, ENV_RUN_ID
from unattended.contracts.settings import Settings

DONE_WHEN_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class WorkerPlan:
    """What the next worker will be: decided by the loop, executed here."""

    number: int
    prompt: str
    model: str | None
    resume_session: str | None  # --resume <id> when continuing the previous session


def build_argv(settings: Settings, plan: WorkerPlan, settings_file: Path | None) -> list[str]:
    """The worker's command line. The prompt is not on it: it goes to the worker's stdin
    (``claude -p`` with no prompt argument reads stdin), out of ``/proc/<pid>/cmdline`` and
    free of the 128 KiB argv limit."""
    argv = [settings.claude_bin, "-p", "--output-format", "stream-json", "--verbose"]
    argv += ["--permission-mode", settings.effective_permission_mode()]
    if settings.allowed_tools:
        argv += ["--allowed-tools", settings.allowed_tools]
    if plan.model:
        argv += ["--model", plan.model]
    if settings_file is not None:
        argv += ["--settings", str(settings_file)]
    if plan.resume_session:
        argv += ["--resume", plan.resume_session]
    return argv


def worker_env(
    environ: Mapping[str, str],
    project: Path,
    run_id: str,
    number: int,
    extra: Mapping[str, str] = {},
) -> dict[str, str]:
    from unattended.platform_adapters.process import clean_env

    env = clean_env(environ)
    env.update(extra)
    env[ENV_PROJECT] = str(project)
    env[ENV_RUN_ID] = run_id
    env[ENV_ITERATION] = str(number)
    _reachable_cli(env)
    return env


def _reachable_cli(env: dict[str, str]) -> None:
    """The protocol tells workers to run `unattended budget check` and `unattended step`: when
    `unattended` is not on the worker's PATH (started as <venv>/bin/unattended), append the
    directory of this installation's script, after everything the user chose."""
    import shutil
    import sys

    path = env.get("PATH", os.defpath)
    if shutil.which("unattended", path=path):
        return
    bin_dir = Path(sys.executable).parent
    if (bin_dir / "unattended").is_file():
        env["PATH"] = f"{path}{os.pathsep}{bin_dir}" if path else str(bin_dir)


# One Snapshotter per run for the daemon's life: it keeps the index that makes the next
# snapshot cheap (see supervisor.git.snapshots.Snapshotter).
_SNAPSHOTTERS: dict[tuple[str, str, str], Any] = {}
# The "after" snapshot of an iteration is the next one's "before" (one more ref to the same
# commit) when nothing but the daemon's own bookkeeping ran in between (no wait, no stagger):
# no second walk of the tree.
REUSE_AFTER_WITHIN_S = 1.0


def git_point(
    project: Path,
    git_dir: Path,
    run_id: str,
    number: int,
    phase: str,
    settings: Settings,
    warn: Callable[[str], None],
) -> GitPoint:
    """Snapshot the whole work tree (so a worker's `git reset --hard` costs one iteration at
    most) and return HEAD plus the tree hash, the supervisor's evidence of progress."""
    from unattended.supervisor.git.facts import GitError
    from unattended.supervisor.git.snapshots import Snapshotter

    key = (str(project), str(git_dir), run_id)
    try:
        shooter = _SNAPSHOTTERS.get(key)
        if shooter is None:
            shooter = Snapshotter(
                project, git_dir, run_id, tuple(settings.snapshot_ignored), watch=True
            )
            _SNAPSHOTTERS[key] = shooter
        shooter.globs = tuple(settings.snapshot_ignored)
        recent = shooter.last is not None and (
            time.monotonic() - shooter.taken_at < REUSE_AFTER_WITHIN_S
        )
        if phase == "before" and recent:
            return GitPoint(head=shooter.last_head, tree=shooter.alias(number, phase).tree)
        snap, head = shooter.take(number, phase)
        if phase == "before":
            shooter.flush()  # a worker starts next: it must not adopt our `git update-ref`
        return GitPoint(head=head, tree=snap.tree)
    except (GitError, OSError) as exc:
        warn(f"git snapshot ({phase}) failed: {exc}")
        return GitPoint()


def run_done_when(
    command: str,
    project: Path,
    env: Mapping[str, str],
    abort: Callable[[], bool] | None = None,
    timeout_s: float = DONE_WHEN_TIMEOUT_S,
) -> bool:
    """--done-when: a shell command in the project; exit 0 means the task is done. The loop's
    tick goes on while it runs; past ``timeout_s`` or when ``abort()`` (a stop) says so, its
    whole tree is ended, what it detached included, and it counts as not done."""

    from unattended.platform_adapters import process

    try:
        done = process.run(
            command, shell=True, cwd=project, env=env, timeout_s=timeout_s,
            policy=process.DETACHING, abort=abort,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except OSError:
        return False
    return done.ok


def count_commits(project: Path, before: str | None, after: str | None) -> tuple[int, int]:
    """(commits, files changed) between two HEADs; zeros when unknown. The run's Snapshotter
    usually counted them while it took the after snapshot."""
    if not before or not after or before == after:
        return 0, 0
    for (where, _, _), shooter in _SNAPSHOTTERS.items():
        counted = shooter.counted
        if where == str(project) and counted and counted[0] == (before, after):
            return counted[1]
    from unattended.supervisor.git.facts import GitError, commit_range_summary, files_changed

    try:
        return len(commit_range_summary(project, before, after)), files_changed(
            project, before, after
        )
    except GitError:
        return 0, 0


def flush_snapshots(warn: Callable[[str], None]) -> None:
    """Wait for the snapshot refs still being written and end the watches (the run is
    ending)."""
    from unattended.supervisor.git.facts import GitError

    for shooter in _SNAPSHOTTERS.values():
        shooter.close()
        try:
            shooter.flush()
        except GitError as exc:
            warn(f"git snapshot failed: {exc}")


def record_from_worker(
    number: int,
    started_at: float,
    ended_at: float,
    outcome: object,
    before: GitPoint,
    after: GitPoint,
) -> IterationRecord:
    """Turn the worker module's outcome into the contract record ``safety`` reads."""
    facts = outcome.stream  # type: ignore[attr-defined]
    result = facts.result
    rate = facts.rate_limit
    rec = IterationRecord(
        number=number,
        started_at=datetime.fromtimestamp(started_at, UTC),
        ended_at=datetime.fromtimestamp(ended_at, UTC),
        duration_s=round(ended_at - started_at, 3),
        exit_code=outcome.exit_code,  # type: ignore[attr-defined]
        ended_by=outcome.ended_by,  # type: ignore[attr-defined]
        last_stderr_line=outcome.last_stderr_line,  # type: ignore[attr-defined]
        saw_result=result is not None,
        tool_calls=facts.tool_calls,
        api_retries=facts.api_retries,
        last_api_retry_status=facts.last_api_retry_status,
        session_id=facts.session_id,
        model=facts.model,
        context_peak_tokens=facts.context_peak_tokens,
        git_before=before,
        git_after=after,
    )
    if rate is not None:
        rec.rate_limit = RateLimitSeen(
            status=rate.status,
            resets_at=rate.resets_at,
            limit_type=rate.rate_limit_type,
            utilization=rate.utilization,
        )
    rec.cli_version = facts.cli_version
    rec.last_api_retry_error = facts.last_api_retry_error
    rec.compactions = facts.compactions
    rec.compact_pre_tokens = facts.compact_pre_tokens
    if result is not None:
        from unattended.supervisor.worker.accounting import apply_usage, iteration_usage

        rec.result_subtype = result.subtype
        rec.is_error = result.is_error
        rec.api_error_status = result.api_error_status
        rec.terminal_reason = result.terminal_reason
        rec.result_text = result.result
        rec.marker_texts = list(facts.marker_texts)
        rec.results = facts.tally.results
        rec.num_turns = result.num_turns
        rec.session_id = result.session_id or rec.session_id
        rec.permission_denials = [d.tool_name for d in result.permission_denials]
        # Every result counts; a resumed session's share is settled once the loop knows the
        # iteration before (accounting.settle).
        rec.usage_tally = facts.tally
        apply_usage(rec, iteration_usage(facts.tally))
        rec.context_window = facts.tally.context_window()
        if result.model_usage and not rec.model:
            rec.model = next(iter(result.model_usage))
    return rec
