"""``status``, ``stop`` and ``logs``: read the files the daemon writes; never talk to it."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from unattended import __version__
from unattended.contracts.paths import RunPaths
from unattended.contracts.status import NONE
from unattended.contracts.timefmt import fmt_duration


class StatusError(Exception):
    """state.json cannot be read: the message names the file; the command exits 2."""


def echo(text: str, err: bool = False) -> None:
    """print() to stdout or stderr: this module avoids typer so `status` starts fast."""
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def load_run_state(project: Path):  # -> RunState | None
    from unattended.contracts.state import StateFileError
    from unattended.supervisor.records.state import read_state

    try:
        return read_state(RunPaths(project))
    except StateFileError as exc:
        raise StatusError(str(exc)) from None


def _ago(seconds: float) -> str:
    return fmt_duration(max(0.0, seconds))


def show_status(project: Path, json_out: bool) -> int:
    from unattended.supervisor.records.liveness import effective_status

    try:
        state = load_run_state(project)
    except StatusError as exc:
        echo(f"unattended: {exc}", err=True)
        return 2
    if state is None:
        if json_out:
            doc = {"status": NONE, "alive": False, "project": str(project)}
            echo(json.dumps({**doc, "cli_version": __version__}))
        else:
            echo(f"no run yet in {project} (start one with `unattended start`)")
        return 0
    shown, alive = effective_status(state)
    if json_out:
        data = state.model_dump(mode="json")
        data.update(status=shown, alive=alive, recorded_status=state.status.value)
        data["orphans"] = _orphans(state, alive)
        data["context_meter"] = _context_meter(project)
        data["cli_version"] = __version__
        echo(json.dumps(data, indent=2))
        return 0
    now = datetime.now(UTC)
    lines = [f"project    {state.project}"]
    who = f"pid {state.pid}, alive" if alive else f"pid {state.pid}, not running"
    lines.append(f"status     {shown} ({who})")
    left = (state.deadline - now).total_seconds()
    lines.append(
        f"run        {state.run_id}, started {state.started_at:%Y-%m-%d %H:%M:%SZ}, "
        f"deadline {state.deadline:%Y-%m-%d %H:%M:%SZ}"
        + (f" ({_ago(left)} left)" if left > 0 and not state.status.terminal else "")
    )
    worker = ""
    if state.worker_pid and alive:
        since = state.worker_started_at
        worker = f" (worker pid {state.worker_pid}"
        worker += f", running {_ago((now - since).total_seconds())})" if since else ")"
    lines.append(f"iteration  {state.iteration} of {state.max_iterations}{worker}")
    if state.last_iteration:
        li = state.last_iteration
        lines.append(
            f"last       iter {li.number} {li.outcome.value} in {_ago(li.duration_s)}"
            + (f": {li.reason}" if li.reason else "")
        )
        if li.error:
            lines.append(f"error      {li.error}")
    if state.resume_at and not state.status.terminal:
        wait = (state.resume_at - now).total_seconds()
        lines.append(f"resume at  {state.resume_at:%Y-%m-%d %H:%M:%SZ} (in {_ago(wait)})")
    lines.append(
        f"tokens     in {state.input_tokens:,}, out {state.output_tokens:,}, cache write "
        f"{state.cache_creation_tokens:,}, cache read {state.cache_read_tokens:,}"
    )
    caps = state.settings or {}
    cost_cap = caps.get("max_cost_usd")
    lines.append(f"cost       ${state.cost_usd:.2f}" + (f" of ${cost_cap:g}" if cost_cap else ""))
    if state.gutter.reason:
        lines.append(f"gutter     {state.gutter.reason}")
    for name, window in state.quota.items():
        resets = f", resets {window.resets_at:%Y-%m-%d %H:%M:%SZ}" if window.resets_at else ""
        util = f", {window.utilization:g}% used" if window.utilization is not None else ""
        lines.append(f"quota      {name}: {window.status or '?'}{util}{resets}")
    quota_pct = caps.get("max_quota_pct")
    if quota_pct and not any(w.utilization is not None for w in state.quota.values()):
        lines.append(
            f"quota      max_quota_pct {quota_pct:g}% cannot act yet: "
            "no worker has reported its quota utilization"
        )
    lines.append(f"inhibitor  {_inhibitor_text(state, alive)}")
    orphans = _orphans(state, alive)
    if orphans:
        pids = ", ".join(str(pid) for pid in orphans)
        lines.append(
            f"orphans    {len(orphans)} process(es) of the crashed run still alive (pid {pids}): "
            "`unattended start` or `start --resume` ends them first"
        )
    lines.extend(_meter_lines(project, state))
    if state.stop_reason:
        lines.append(f"ended      {state.stop_reason} (exit {state.exit_code})")
    if state.pushed_ref:
        lines.append(f"pushed     {state.pushed_ref}")
    if state.pr_url:
        lines.append(f"pr         {state.pr_url}")
    if state.on_done_error:
        lines.append(f"on-done    {state.on_done_error}")
    lines.append(f"log        {RunPaths(project).run_log}")
    echo("\n".join(lines))
    return 0


def _meter_lines(project: Path, state) -> list[str]:  # noqa: ANN001
    """The context meter's last reading, and its failures: a meter that never produced a
    reading while workers ran tools is a broken hook, and says so."""
    from unattended.supervisor.records.meter_file import read_context_meter_or_none

    meter = read_context_meter_or_none(RunPaths(project).context_meter)
    lines = []
    if meter and meter.band:
        percent = f"{meter.percent:g}%" if meter.percent is not None else "?%"
        window = f"{meter.window:,}" if meter.window else "?"
        lines.append(f"context    {percent} ({meter.band}) of a {window} token window")
    elif state.iteration and (state.last_iteration or state.worker_pid):
        lines.append("context    no reading from the context meter yet")
    if meter and meter.failures:
        lines.append(f"meter      {meter.failures} failed reading(s); last: {meter.last_error}")
    return lines


def _orphans(state, alive: bool) -> list[int]:  # noqa: ANN001
    """The recorded processes of a crashed run (a dead daemon, a state not terminal) that are
    still alive and provably its."""
    if alive or state.status.terminal or not state.descendants:
        return []
    from unattended.platform_adapters.proctree import still_alive

    recorded = [(d.pid, d.create_time) for d in state.descendants]
    groups = {state.worker_pid} if state.worker_pid else set()
    return still_alive(recorded, state.run_id, groups)


def _inhibitor_text(state, alive: bool) -> str:  # noqa: ANN001
    if not alive or not state.inhibitor:
        return "none held"
    return f"held: {state.inhibitor}"


def _context_meter(project: Path) -> dict | None:
    from unattended.supervisor.records.meter_file import read_context_meter_or_none

    meter = read_context_meter_or_none(RunPaths(project).context_meter)
    return meter.model_dump(mode="json") if meter is not None else None











