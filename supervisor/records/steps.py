"""Steps a worker reports with ``unattended step``, and the live context reading it uses.

A worker calls ``unattended step --complete N --desc ...`` after each step of its task. The line
goes to ``run.log`` for people and to ``iterations/NNNN.steps.jsonl`` for the iteration's
record (``read_steps``). Outside a worker (no ``UNATTENDED_ITERATION``) steps go to
``.unattended/steps.jsonl``.

The live reading is the context meter's last reading (``context-meter.json``), found through
the variables every worker inherits from the daemon.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unattended.contracts.names import (
    ENV_CONTEXT_WINDOW,
    ENV_ITERATION,
    ENV_PROJECT,
    ENV_STATE_DIR,
    METER_FILE_NAME,
    STATE_DIR_NAME,
)
from unattended.supervisor.records.fsio import append_line, ensure_private_dir, sys_calls

if TYPE_CHECKING:
    from unattended.contracts.paths import RunPaths

UNKNOWN_WINDOW = 200_000  # "200000 when unknown", as in the step-tracking design


def steps_path(paths: RunPaths, iteration: int | None) -> Path:
    """``iterations/NNNN.steps.jsonl`` of that iteration, or ``steps.jsonl`` outside a worker."""
    if iteration is None:
        return paths.records / "steps.jsonl"
    return paths.iterations / f"{iteration:04d}.steps.jsonl"


def read_steps(paths: RunPaths, iteration: int | None) -> list[dict[str, Any]]:
    """The steps recorded for ``iteration`` (oldest first); unreadable lines are skipped."""
    try:
        text = steps_path(paths, iteration).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    steps: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            steps.append(item)
    return steps


def current_iteration(environ: Mapping[str, str]) -> int | None:
    try:
        value = int(environ.get(ENV_ITERATION, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def worker_state_dir(environ: Mapping[str, str]) -> Path | None:
    """``.unattended`` of the run this process works for, or None outside a worker."""
    if environ.get(ENV_STATE_DIR):
        return Path(environ[ENV_STATE_DIR])
    if environ.get(ENV_PROJECT):
        return Path(environ[ENV_PROJECT]) / STATE_DIR_NAME
    return None


def live_reading(environ: Mapping[str, str]) -> tuple[dict[str, Any] | None, str]:
    """(the current worker's last context reading, or None with the reason there is none)."""
    state_dir = worker_state_dir(environ)
    if state_dir is None:
        return None, "not inside an unattended worker, so there is no live context reading"
    from unattended.supervisor.records.meter_file import read_context_meter_or_none

    meter = read_context_meter_or_none(state_dir / METER_FILE_NAME)
    if meter is None or meter.last_reading is None:
        return None, "the context meter has not produced a reading in this run yet"
    reading = meter.last_reading.model_dump()
    mine, theirs = environ.get(ENV_ITERATION), reading.get("iteration")
    if mine and theirs and str(theirs) != mine:
        return None, f"the last context reading is from iteration {theirs}, not this one ({mine})"
    return reading, ""


def window_for(environ: Mapping[str, str], reading: dict[str, Any] | None) -> int:
    """The current model's window: the reading's, the daemon's variable, else 200000."""
    if reading and isinstance(reading.get("window"), int) and reading["window"] > 0:
        return reading["window"]
    try:
        value = int(environ.get(ENV_CONTEXT_WINDOW, ""))
    except ValueError:
        return UNKNOWN_WINDOW
    return value if value > 0 else UNKNOWN_WINDOW


def timestamp() -> str:
    """The run.log timestamp: ISO 8601 UTC, second precision."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sys_calls.time()))


def log_prefix(iteration: int | None, now: str | None = None) -> str:
    """The same prefix the daemon's run.log lines carry (``supervisor.runlog``)."""
    now = now or timestamp()
    return f"{now} iter {iteration} " if iteration else f"{now} "


def append_run_log(paths: RunPaths, line: str) -> None:
    """One whole line with O_APPEND, so it interleaves safely with the daemon's writes: in the
    whole log, and in the copy people tail (best effort)."""
    append_line(paths.run_log, line)
    if paths.run_log_view != paths.run_log:
        with contextlib.suppress(OSError):
            append_line(paths.run_log_view, line)


def record_step(paths: RunPaths, iteration: int | None, item: dict[str, Any]) -> Path:
    target = steps_path(paths, iteration)
    ensure_private_dir(target.parent)
    append_line(target, json.dumps(item, ensure_ascii=False))
    return target


def step_line(number: int, percent: float, status: str, action: str, desc: str = "") -> str:
    """The seed's line, exactly, then `` — <desc>`` when there is a description."""
    line = f"Step {number} completed: Tokens: {percent:.1f}%; Status: {status}, {action}"
    return f"{line} — {desc}" if desc else line


def cycle_line(number: int, reason: str) -> str:
    return f"Cycle {number} closed: {reason}"


def next_cycle(paths: RunPaths, iteration: int | None) -> int:
    """The cycle a worker closes: its iteration, else one more than the closes recorded."""
    if iteration is not None:
        return iteration
    return 1 + sum(1 for item in read_steps(paths, None) if "cycle_end" in item)


__all__ = [
    "append_run_log",
    "current_iteration",
    "cycle_line",
    "next_cycle",
    "live_reading",
    "log_prefix",
    "read_steps",
    "record_step",
    "step_line",
    "steps_path",
    "window_for",
    "worker_state_dir",
]
