"""Sums over telemetry lines: per group (model, outcome, day, run, session kind), why runs
ended, and the context bands iterations reached. Pure functions of loaded data, shared by
``metrics``, ``report`` and ``advise``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unattended.contracts.telemetry import TelemetryLine
    from unattended.supervisor.records.readers import RunRecord

GROUP_KEYS: dict[str, Callable[[TelemetryLine], str]] = {
    "model": lambda t: t.model or "(default)",
    "outcome": lambda t: t.outcome.value,
    "day": lambda t: t.time.strftime("%Y-%m-%d"),
    "run": lambda t: t.run_id,
    "session": lambda t: "resumed" if t.resumed_session else "fresh",
}
BANDS = ("normal", "warn", "stop")


@dataclass
class Group:
    key: str
    iterations: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0  # the larger of the two below, per iteration: what caps count
    cost_usd_cli: float = 0.0  # the CLI's own figures (iterations that had one)
    cost_usd_priced: float = 0.0  # the published prices
    duration_s: float = 0.0
    commits: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def tokens(self) -> int:
        """Input + output + cache creation: what the token cap counts (cache reads apart)."""
        return self.input_tokens + self.output_tokens + self.cache_creation_tokens

    @property
    def cost_per_iteration(self) -> float:
        return self.cost_usd / self.iterations if self.iterations else 0.0

    @property
    def seconds_per_iteration(self) -> float:
        return self.duration_s / self.iterations if self.iterations else 0.0

    def add(self, line: TelemetryLine) -> None:
        self.iterations += 1
        self.input_tokens += line.input_tokens
        self.output_tokens += line.output_tokens
        self.cache_creation_tokens += line.cache_creation_tokens
        self.cache_read_tokens += line.cache_read_tokens
        self.cost_usd += line.total_cost_usd
        self.cost_usd_cli += line.cost_usd_cli or 0.0
        self.cost_usd_priced += line.cost_usd_priced or 0.0
        self.duration_s += line.duration_s
        self.commits += line.commits
        self.outcomes[line.outcome.value] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "iterations": self.iterations,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "tokens": self.tokens,
            "cost_usd": round(self.cost_usd, 6),
            "cost_usd_cli": round(self.cost_usd_cli, 6),
            "cost_usd_priced": round(self.cost_usd_priced, 6),
            "cost_per_iteration_usd": round(self.cost_per_iteration, 6),
            "duration_s": round(self.duration_s, 3),
            "duration_per_iteration_s": round(self.seconds_per_iteration, 3),
            "commits": self.commits,
            "outcomes": dict(sorted(self.outcomes.items())),
        }


def total(lines: Iterable[TelemetryLine], key: str = "total") -> Group:
    group = Group(key)
    for line in lines:
        group.add(line)
    return group


def group_by(lines: Iterable[TelemetryLine], by: str) -> list[Group]:
    """Groups in first-seen order (time order for runs and days); outcomes sorted by count."""
    key_of = GROUP_KEYS[by]
    groups: dict[str, Group] = {}
    for line in lines:
        key = key_of(line)
        groups.setdefault(key, Group(key)).add(line)
    result = list(groups.values())
    if by == "day":
        result.sort(key=lambda g: g.key)
    elif by in ("outcome", "model"):
        result.sort(key=lambda g: (-g.iterations, g.key))
    return result


def _compaction_facts(run: RunRecord) -> dict[str, Any]:
    """Iterations the CLI compacted by itself (the bands acted too late), and the CLI version."""
    compacted = [t.iteration for t in run.telemetry if t.compactions]
    versions = [t.cli_version for t in run.telemetry if t.cli_version]
    return {
        "compactions": sum(t.compactions for t in run.telemetry),
        "compacted_iterations": compacted,
        "cli_version": versions[-1] if versions else (run.state.cli_version if run.state else None),
    }


def halts(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """Why each run ended (or that it is still going / crashed / unreadable)."""
    from unattended.supervisor.records.liveness import effective_status

    rows: list[dict[str, Any]] = []
    for run in runs:
        state = run.state
        if state is None:
            rows.append(
                {
                    "run_id": run.run_id,
                    "status": "unknown",
                    "iterations": len(run.telemetry),
                    "cost_usd": round(sum(t.total_cost_usd for t in run.telemetry), 6),
                    "exit_code": None,
                    "reason": run.state_error or "no state.json",
                    **_compaction_facts(run),
                }
            )
            continue
        status = effective_status(state)[0] if run.current else state.status.value
        if not run.current and not state.status.terminal:
            status = "crashed"
        rows.append(
            {
                "run_id": run.run_id,
                "status": status,
                "iterations": state.iteration,
                "cost_usd": round(state.cost_usd, 6),
                "exit_code": state.exit_code,
                "reason": state.stop_reason,
                **_compaction_facts(run),
            }
        )
    return rows


def context_rows(lines: Iterable[TelemetryLine]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": t.run_id,
            "iteration": t.iteration,
            "model": t.model,
            "context_peak_tokens": t.context_peak_tokens,
            "context_window": t.context_window,
            "context_pct": t.context_pct,
            "context_band": t.context_band,
            "handed_off": t.handed_off,
            "resumed_session": t.resumed_session,
        }
        for t in lines
    ]


def band_counts(lines: Iterable[TelemetryLine]) -> dict[str, int]:
    counts = Counter(t.context_band or "unknown" for t in lines)
    ordered = {band: counts.pop(band, 0) for band in BANDS}
    ordered.update(sorted(counts.items()))
    return ordered

