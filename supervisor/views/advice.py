"""Recommendations from telemetry across runs, each with its evidence and a stable id, and the
record of what the user applied or rejected (``advice.json`` in the run records).

A rule about setting K only counts runs that ran with K's current value: evidence gathered under
an old value says nothing about the new one (after raising ``worker_timeout`` the old timeouts
must not ask for another raise). A rejected recommendation is not proposed again until five
more runs have started.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unattended.contracts.settings import Settings
    from unattended.contracts.telemetry import TelemetryLine
    from unattended.supervisor.records.readers import RunRecord

ADVICE_FILE = "advice.json"
SUPPRESS_RUNS = 5
MIN_ITERATIONS = 5  # fewer iterations than this prove nothing
MIN_SESSIONS = 3  # per kind (fresh, resumed) to compare them


@dataclass(frozen=True)
class Recommendation:
    id: str
    key: str
    value: Any
    current: Any
    action: str  # "lower `context_warn_pct` to 60"
    evidence: str  # "9 of 26 iterations reached the context stop band"
    kind: str = "change"  # or "keep": the data supports the current value

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_value(run: RunRecord, key: str) -> Any:
    from unattended.contracts.settings import Settings

    saved = run.state.settings if run.state else {}
    if key in saved:
        return saved[key]
    field = Settings.model_fields[key]
    return field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b))
    return a == b


def _lines_with(runs: list[RunRecord], key: str, current: Any) -> list[TelemetryLine]:
    """Telemetry of the runs that ran with ``key`` at its current value."""
    return [t for r in runs if _same(_run_value(r, key), current) for t in r.telemetry]


def _context_warn(runs: list[RunRecord], s: Settings) -> Recommendation | None:
    lines = [t for t in _lines_with(runs, "context_warn_pct", s.context_warn_pct) if t.context_band]
    stops = sum(1 for t in lines if t.context_band == "stop")
    if len(lines) < MIN_ITERATIONS or stops < 2 or stops / len(lines) < 0.2:
        return None
    value = max(50, int(s.context_warn_pct) - 10)
    if value >= s.context_warn_pct:
        return None
    return Recommendation(
        "context-warn",
        "context_warn_pct",
        value,
        s.context_warn_pct,
        f"lower `context_warn_pct` to {value}",
        f"{stops} of {len(lines)} iterations reached the context stop band",
    )


def _compactions(runs: list[RunRecord], s: Settings) -> Recommendation | None:
    """The CLI compacted a worker's context by itself: the handoff reached it too late."""
    lines = _lines_with(runs, "context_stop_pct", s.context_stop_pct)
    compacted = sum(1 for t in lines if t.compactions)
    if not compacted:
        return None
    value = max(int(s.context_warn_pct) + 5, int(s.context_stop_pct) - 10)
    if value >= s.context_stop_pct:
        return None
    return Recommendation(
        "context-compacted",
        "context_stop_pct",
        value,
        s.context_stop_pct,
        f"lower `context_stop_pct` to {value}",
        f"the CLI compacted the context of {compacted} of {len(lines)} iterations by itself "
        "before the handoff",
    )


def _raise_after(
    runs: list[RunRecord],
    s: Settings,
    rule_id: str,
    key: str,
    outcome: str,
    min_hits: int,
    new_value: Callable[[float], int],
    evidence: str,
) -> Recommendation | None:
    """Raise setting ``key`` when at least ``min_hits`` iterations (run with its current value)
    ended with ``outcome``; ``evidence`` is formatted with ``hits`` and ``total``."""
    current = getattr(s, key)
    lines = _lines_with(runs, key, current)
    hits = sum(1 for t in lines if t.outcome.value == outcome)
    if hits < min_hits:
        return None
    value = new_value(current)
    return Recommendation(
        rule_id,
        key,
        value,
        current,
        f"raise `{key}` to {value}",
        evidence.format(hits=hits, total=len(lines)),
    )


def _worker_timeout(runs: list[RunRecord], s: Settings) -> Recommendation | None:
    return _raise_after(
        runs, s, "worker-timeout", "worker_timeout", "timeout", 2,
        lambda v: int(math.ceil(v * 1.5 / 300) * 300),
        "the worker timeout ended {hits} of {total} iterations",
    )  # fmt: skip


def _stall_timeout(runs: list[RunRecord], s: Settings) -> Recommendation | None:
    return _raise_after(
        runs, s, "stall-timeout", "stall_timeout", "stalled", 2,
        lambda v: int(math.ceil(v * 2 / 300) * 300),
        "the stall watchdog ended {hits} of {total} iterations",
    )  # fmt: skip


def _api_backoff(runs: list[RunRecord], s: Settings) -> Recommendation | None:
    return _raise_after(
        runs, s, "api-backoff", "api_backoff_s", "api-error", 3,
        lambda v: int(max(60, v * 2)),
        "{hits} of {total} iterations ended with an API error",
    )  # fmt: skip


def _session_policy(runs: list[RunRecord], s: Settings) -> Recommendation | None:
    lines = [t for r in runs for t in r.telemetry]
    resumed = [t.total_cost_usd for t in lines if t.resumed_session]
    fresh = [t.total_cost_usd for t in lines if not t.resumed_session]
    if len(resumed) < MIN_SESSIONS or len(fresh) < MIN_SESSIONS or not sum(fresh):
        return None
    saving = 1 - (sum(resumed) / len(resumed)) / (sum(fresh) / len(fresh))
    if abs(saving) < 0.15:
        return None
    if saving > 0:
        evidence = f"resumed sessions cost {saving:.0%} less per iteration than fresh ones"
        value = "auto" if s.session_policy == "fresh" else s.session_policy
    else:
        evidence = f"resumed sessions cost {-saving:.0%} more per iteration than fresh ones"
        value = "fresh"
    evidence = evidence.replace("%", " %")
    kind = "keep" if value == s.session_policy else "change"
    verb = "keep" if kind == "keep" else "set"
    return Recommendation(
        "session-policy",
        "session_policy",
        value,
        s.session_policy,
        f"{verb} `session_policy = {value}`",
        evidence,
        kind,
    )


def _cost_cap(runs: list[RunRecord], s: Settings) -> Recommendation | None:
    if s.max_cost_usd is not None:
        return None
    costs = [sum(t.total_cost_usd for t in r.telemetry) for r in runs if r.telemetry]
    if not costs or max(costs) <= 0:
        return None
    value = max(1, int(math.ceil(max(costs) * 1.5)))
    return Recommendation(
        "cost-cap",
        "max_cost_usd",
        value,
        None,
        f"set `max_cost_usd` to {value} so a runaway night is bounded",
        f"no cost cap is set and the costliest of {len(costs)} run(s) cost ${max(costs):.2f}",
    )


RULES = (
    _context_warn,
    _compactions,
    _worker_timeout,
    _stall_timeout,
    _api_backoff,
    _session_policy,
    _cost_cap,
)


def recommend(runs: list[RunRecord], settings: Settings) -> list[Recommendation]:
    return [rec for rule in RULES if (rec := rule(runs, settings)) is not None]


# ----- the record of decisions ------------------------------------------------------------


def load_decisions(state_dir: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((state_dir / ADVICE_FILE).read_text())
    except (OSError, ValueError):
        return []
    decisions = data.get("decisions") if isinstance(data, dict) else None
    return [d for d in decisions or [] if isinstance(d, dict) and isinstance(d.get("id"), str)]


def record_decision(state_dir: Path, rec: Recommendation, action: str, run_ids: list[str]) -> None:
    from unattended.supervisor.records.fsio import atomic_write, ensure_private_dir

    decisions = load_decisions(state_dir)
    decisions.append(
        {
            "id": rec.id,
            "action": action,
            "key": rec.key,
            "value": rec.value,
            "evidence": rec.evidence,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "runs_seen": run_ids,
        }
    )
    ensure_private_dir(state_dir)
    doc = {"schema_version": 1, "decisions": decisions}
    atomic_write(state_dir / ADVICE_FILE, json.dumps(doc, indent=2) + "\n")


def suppressed(
    rec: Recommendation, decisions: list[dict[str, Any]], run_ids: list[str]
) -> dict[str, Any] | None:
    """The decision that hides ``rec`` (rejected, or applied with this value) until five new
    runs have started since; None when it may be shown."""
    for decision in reversed(decisions):
        if decision.get("id") != rec.id:
            continue
        seen = set(decision.get("runs_seen") or [])
        new_runs = sum(1 for run_id in run_ids if run_id not in seen)
        if new_runs >= SUPPRESS_RUNS:
            return None
        if decision.get("action") == "rejected":
            return decision
        if decision.get("action") == "applied" and _same(decision.get("value"), rec.value):
            return decision
        return None
    return None
