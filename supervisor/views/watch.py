"""What ``unattended watch`` shows, as plain lines: built from the files the daemon writes, so
watching needs no socket and costs the daemon nothing.

One screen fits 80x24: a header, nine lines about the run, the last ten run.log lines and a
footer. The same lines serve the live view (styled) and the plain snapshot (pipes, cron).
Rereads are cheap: telemetry and the worker's stream are reread only when they change, the
stream from its tail only, and git is asked at most every few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from unattended.contracts.paths import RunPaths

LOG_LINES = 10
GIT_EVERY_S = 5.0
STATUS_STYLES = {
    "running": "bold green",
    "starting": "green",
    "waiting": "yellow",
    "done": "bold green",
    "blocked": "bold magenta",
    "stuck": "bold red",
    "capped": "bold yellow",
    "stopped": "yellow",
    "failed": "bold red",
    "crashed": "bold red",
}
BAND_STYLES = {"normal": "green", "warn": "yellow", "stop": "bold red"}


@dataclass
class Line:
    text: str
    style: str = ""


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime, st.st_size


@dataclass
class WatchSource:
    """Reads one project's files; keeps what did not change since the last refresh."""

    project: Path
    paths: RunPaths = field(init=False)
    _tele_stamp: Any = None
    _telemetry: list = field(default_factory=list)
    _stream_key: Any = None
    _tool: Any = None
    _git_at: float = 0.0
    _git_key: Any = None
    _live_commits: int = 0

    def __post_init__(self) -> None:
        self.paths = RunPaths(self.project)

    def telemetry(self) -> list:
        from unattended.supervisor.records.readers import load_telemetry

        stamp = _stamp(self.paths.telemetry)
        if stamp != self._tele_stamp:
            self._tele_stamp = stamp
            self._telemetry = load_telemetry(self.paths.telemetry)[0] if stamp else []
        return self._telemetry

    def last_tool(self, iteration: int) -> Any:
        from unattended.supervisor.records.stream_tail import last_tool_call

        path = self.paths.iteration_stdout(iteration)
        key = (iteration, _stamp(path))
        if key != self._stream_key:
            self._stream_key = key
            self._tool = last_tool_call(path) if key[1] else None
        return self._tool

    def commits_since(self, head: str | None) -> int:
        """Commits on HEAD since ``head`` (the last finished iteration's): the live worker's."""
        if not head:
            return 0
        now = time.monotonic()
        if head == self._git_key and now - self._git_at < GIT_EVERY_S:
            return self._live_commits
        from unattended.supervisor.git.facts import run_git

        self._git_key, self._git_at = head, now
        try:
            out = run_git(self.project, "rev-list", "--count", f"{head}..HEAD", check=False)
            self._live_commits = int(out.strip() or 0)
        except (ValueError, Exception):  # noqa: BLE001 - git trouble: show what telemetry says
            self._live_commits = 0
        return self._live_commits


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _pct(part: float, whole: float | None) -> str:
    return f" ({100 * part / whole:.0f} %)" if whole else ""


def build_lines(source: WatchSource, now: datetime | None = None, width: int = 80) -> list[Line]:
    """The screen, top to bottom, each line at most ``width`` characters."""
    from unattended.contracts.state import StateFileError
    from unattended.contracts.timefmt import fmt_duration
    from unattended.supervisor.records.liveness import effective_status
    from unattended.supervisor.records.meter_file import read_context_meter_or_none
    from unattended.supervisor.records.readers import tail_lines
    from unattended.supervisor.records.state import read_state

    now = now or datetime.now(UTC)
    paths = source.paths
    lines = [Line(f"unattended watch: {source.project.name}  ({source.project})", "bold")]
    try:
        state = read_state(paths)
    except StateFileError as exc:
        lines.append(Line(f"cannot read state: {exc}", "bold red"))
        state = None
    if state is None:
        if len(lines) == 1:
            lines.append(Line("no run yet here (start one: unattended start)"))
    else:
        shown, alive = effective_status(state)
        terminal = state.status.terminal or shown == "crashed"
        if alive:
            pid = f"daemon pid {state.pid}"
        else:
            pid = "daemon exited" if state.status.terminal else f"daemon pid {state.pid} is gone"
        lines.append(
            Line(
                f"status    {shown} ({pid})   iteration {state.iteration} of "
                f"{state.max_iterations}",
                STATUS_STYLES.get(shown, ""),
            )
        )
        left = (state.deadline - now).total_seconds()
        when = f"{state.deadline:%Y-%m-%d %H:%MZ}"
        when += f", {fmt_duration(left)} left" if left > 0 and not terminal else ""
        lines.append(Line(f"deadline  {when}   run {state.run_id}"))
        lines += _worker_lines(source, state, now, terminal)
        lines += _usage_lines(source, state, read_context_meter_or_none(paths.context_meter))
    lines.append(Line("── run.log " + "─" * max(0, width - 11), "dim"))
    lines += [Line(text) for text in tail_lines(paths.run_log, LOG_LINES)]
    return [Line(_fit(line.text, width), line.style) for line in lines]


def _worker_lines(source: WatchSource, state: Any, now: datetime, terminal: bool) -> list[Line]:
    from unattended.contracts.timefmt import fmt_duration

    if terminal:
        reason = state.stop_reason or "the daemon is gone without saying why (see run.log)"
        return [Line(f"ended     {reason}", STATUS_STYLES.get(state.status.value, ""))]
    out = []
    if state.worker_pid and state.worker_started_at:
        elapsed = fmt_duration((now - state.worker_started_at).total_seconds())
        out.append(Line(f"worker    pid {state.worker_pid}, running {elapsed}"))
        tool = source.last_tool(state.iteration)
        action = f"{tool.name}: {tool.arg}" if tool and tool.arg else (tool.name if tool else "—")
        out.append(Line(f"last      {action}"))
    else:
        wait = "between workers"
        if state.resume_at:
            secs = (state.resume_at - now).total_seconds()
            wait = f"waiting until {state.resume_at:%H:%M:%SZ} (in {fmt_duration(secs)})"
        out.append(Line(f"worker    none ({wait})"))
        li = state.last_iteration
        if li is not None:
            text = f"iter {li.number} {li.outcome.value} in {fmt_duration(li.duration_s)}"
            out.append(Line(f"last      {text}" + (f": {li.reason}" if li.reason else "")))
    return out


def _usage_lines(source: WatchSource, state: Any, meter: Any) -> list[Line]:
    from unattended.supervisor.views.text import fmt_tokens

    s = state.settings
    out = []
    if meter is not None and meter.percent is not None:
        toks = f", {fmt_tokens(meter.tokens)} tokens" if meter.tokens is not None else ""
        it = f" (iter {meter.iteration})" if meter.iteration else ""
        out.append(
            Line(
                f"context   {meter.percent:.0f} % ({meter.band or '?'}){toks}{it}",
                BAND_STYLES.get(meter.band or "", ""),
            )
        )
    else:
        out.append(Line("context   no reading yet", "dim"))
    cap = s.get("max_tokens")
    cap_text = f" of {fmt_tokens(cap)} cap{_pct(state.total_tokens, cap)}" if cap else ""
    out.append(
        Line(
            f"tokens    {fmt_tokens(state.total_tokens)}{cap_text}, cache read "
            f"{fmt_tokens(state.cache_read_tokens)}"
        )
    )
    cap = s.get("max_cost_usd")
    cap_text = f" of ${cap:.2f} cap{_pct(state.cost_usd, cap)}" if cap else " (no cap)"
    out.append(Line(f"cost      ${state.cost_usd:.2f}{cap_text}"))
    telemetry = [t for t in source.telemetry() if t.run_id == state.run_id]
    commits = sum(t.commits for t in telemetry)
    if state.worker_pid and telemetry and not state.status.terminal:
        commits += source.commits_since(telemetry[-1].head_after)
    out.append(Line(f"commits   {commits}"))
    return out


def snapshot_text(project: Path, width: int = 80) -> str:
    return "\n".join(line.text for line in build_lines(WatchSource(project), width=width))


def terminal_width(default: int = 80) -> int:
    """The terminal's width; $COLUMNS or ``default`` when output goes to a pipe."""
    import shutil

    return shutil.get_terminal_size((default, 24)).columns
