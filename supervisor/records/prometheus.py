"""Runs in the Prometheus text exposition format, for node_exporter's textfile collector
(``start --metrics-textfile PATH``, rewritten atomically at every state write) and for
``unattended metrics --prometheus`` (every run of this user, from the registry: the joining
is in ``cli/metrics``).

Names follow the Prometheus conventions: units as suffixes, ``_total`` for counters, an info
metric (``unattended_run_info``) carrying the descriptive labels; every series is labelled with
``project`` and ``run_id`` so many runs can share one scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from unattended.contracts.state import RunState
from unattended.contracts.status import CRASHED, RunStatus

# Every status a run can show, one-hot in unattended_run_status.
STATUSES: tuple[str, ...] = (*(s.value for s in RunStatus), CRASHED)
TEXTFILE_MODE = 0o644  # node_exporter runs as another user; nothing secret is in it
TOKEN_KINDS = ("input", "output", "cache_creation", "cache_read")

_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("unattended_run_info", "gauge", "A run of unattended; its labels describe it (always 1)."),
    ("unattended_run_status", "gauge", "The run's status, one-hot."),
    ("unattended_iterations_total", "counter", "Workers started by the run."),
    ("unattended_tokens_total", "counter", "Tokens the run's workers used, by kind."),
    ("unattended_cost_usd_total", "counter", "What the run's workers cost, in US dollars."),
    ("unattended_deadline_timestamp_seconds", "gauge", "When the run's hours run out."),
    (
        "unattended_last_iteration_timestamp_seconds",
        "gauge",
        "When the run's last iteration ended.",
    ),
    (
        "unattended_waiting_until_timestamp_seconds",
        "gauge",
        "When a waiting run resumes (a usage limit, a backoff); 0 when it is not waiting.",
    ),
    (
        "unattended_context_used_ratio",
        "gauge",
        "The share of the context window the current (or last) worker used.",
    ),
)


@dataclass(frozen=True)
class RunSample:
    state: RunState
    status: str  # as shown: the state's, or `crashed` when its daemon died
    branch: str | None
    context_ratio: float | None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _samples(run: RunSample) -> dict[str, list[str]]:
    st = run.state
    ids = [("project", st.project), ("run_id", st.run_id)]
    info = [*ids, ("branch", run.branch or ""), ("model", st.model or "")]
    out: dict[str, list[str]] = {name: [] for name, _, _ in _FAMILIES}
    out["unattended_run_info"].append(f"unattended_run_info{_labels(info)} 1")
    for status in STATUSES:
        one = 1 if status == run.status else 0
        out["unattended_run_status"].append(
            f"unattended_run_status{_labels([*info, ('status', status)])} {one}"
        )
    out["unattended_iterations_total"].append(
        f"unattended_iterations_total{_labels(ids)} {st.iteration}"
    )
    tokens = (st.input_tokens, st.output_tokens, st.cache_creation_tokens, st.cache_read_tokens)
    for kind, count in zip(TOKEN_KINDS, tokens, strict=True):
        out["unattended_tokens_total"].append(
            f"unattended_tokens_total{_labels([*ids, ('kind', kind)])} {count}"
        )
    out["unattended_cost_usd_total"].append(
        f"unattended_cost_usd_total{_labels(ids)} {_number(st.cost_usd)}"
    )
    out["unattended_deadline_timestamp_seconds"].append(
        f"unattended_deadline_timestamp_seconds{_labels(ids)} {_number(st.deadline.timestamp())}"
    )
    last = st.last_iteration.ended_at if st.last_iteration else None
    if last is not None:
        out["unattended_last_iteration_timestamp_seconds"].append(
            f"unattended_last_iteration_timestamp_seconds{_labels(ids)} {_number(last.timestamp())}"
        )
    waiting = st.resume_at.timestamp() if st.resume_at and not st.status.terminal else 0
    out["unattended_waiting_until_timestamp_seconds"].append(
        f"unattended_waiting_until_timestamp_seconds{_labels(ids)} {_number(waiting)}"
    )
    if run.context_ratio is not None:
        out["unattended_context_used_ratio"].append(
            f"unattended_context_used_ratio{_labels(ids)} {_number(run.context_ratio)}"
        )
    return out


def render(runs: Iterable[RunSample]) -> str:
    """The exposition text: each family once (HELP, TYPE, then every run's samples)."""
    per_run = [_samples(run) for run in runs]
    lines: list[str] = []
    for name, kind, help_text in _FAMILIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for samples in per_run:
            lines += samples[name]
    return "\n".join(lines) + "\n"


def context_ratio(meter_path: Path) -> float | None:
    from unattended.supervisor.records.meter_file import read_context_meter

    meter = read_context_meter(meter_path)
    if meter is None or meter.percent is None:
        return None
    return max(0.0, meter.percent / 100.0)


def project_branch(project: Path) -> str | None:
    """The branch checked out in ``project`` (a repository or a linked worktree)."""
    git = project / ".git"
    if git.is_file():  # a linked worktree: "gitdir: <path>"
        try:
            git = Path(git.read_text().split(":", 1)[1].strip())
        except (OSError, IndexError):
            return None
    return head_branch(git)


def head_branch(git_dir: Path) -> str | None:
    """The checked-out branch from ``<git dir>/HEAD``: a file read, no git process (this runs
    at every state write)."""
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return None
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: refs/heads/") else None


# ----- the daemon's textfile -----------------------------------------------------------------
_failed: set[str] = set()  # paths whose failure was logged: one warning per path and daemon


def export_textfile(ctx, warn: Callable[[str], None]) -> None:  # noqa: ANN001 - RunContext
    """Rewrite ``metrics_textfile`` from the state in memory; a failure warns once and never
    ends the run."""
    from unattended.supervisor.records.fsio import atomic_write

    target = Path(ctx.settings.metrics_textfile).expanduser()
    if not target.is_absolute():
        target = ctx.project / target
    st = ctx.state
    sample = RunSample(
        state=st,
        status=st.status.value,
        branch=head_branch(ctx.git_dir),
        context_ratio=context_ratio(ctx.paths.context_meter),
    )
    try:
        if not target.parent.is_dir():  # node_exporter's directory: ours to fill, not to make
            raise FileNotFoundError(2, "No such directory", str(target.parent))
        atomic_write(target, render([sample]), mode=TEXTFILE_MODE)
    except OSError as exc:
        if str(target) not in _failed:
            _failed.add(str(target))
            warn(f"cannot write the metrics textfile {target}: {exc.strerror or exc}")
        return
    _failed.discard(str(target))
