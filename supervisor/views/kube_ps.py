"""``unattended kube ps``: our Jobs as ``ps`` rows, from ``kubectl get jobs,pods -o json``.

A finished pod's termination message is the outcome the entrypoint wrote from run.log
(``run ended done (exit 0) after 3 iteration(s), $1.20: ...`` plus the pushed ref and the pull
request); a live pod has no message yet, so its iteration and cost are unknown here (the
Prometheus textfile has them).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from unattended.supervisor.views.kube_manifest import INSTANCE_LABEL, REPO_ANNOTATION

_ENDED = re.compile(
    r"run ended (?P<status>\w+) \(exit (?P<code>\d+)\) after (?P<iterations>\d+) iteration\(s\), "
    r"\$(?P<cost>[0-9.]+)(?::\s*(?P<reason>.*))?"
)


@dataclass
class KubeRow:
    job: str
    namespace: str
    project: str  # the repository URL
    pod: str | None
    status: str
    iteration: int | None
    cost_usd: float | None
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None = None
    reason: str | None = None
    pushed_ref: str | None = None
    pr_url: str | None = None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "ended_at"):
            moment = data[key]
            data[key] = moment.isoformat().replace("+00:00", "Z") if moment else None
        return data


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def parse_outcome(message: str) -> dict[str, Any]:
    """The fields of a termination message the entrypoint wrote; {} for any other text."""
    found: dict[str, Any] = {}
    for line in message.splitlines():
        line = line.strip()
        match = _ENDED.search(line)
        if match:
            found.update(
                status=match["status"],
                exit_code=int(match["code"]),
                iteration=int(match["iterations"]),
                cost_usd=float(match["cost"]),
                reason=match["reason"],
            )
        elif line.startswith("pushed: "):
            found["pushed_ref"] = line.removeprefix("pushed: ")
        elif line.startswith("pull request: "):
            found["pr_url"] = line.removeprefix("pull request: ")
        elif line.startswith(("push failed: ", "pull request failed: ", "on-done ")):
            found["note"] = line
    return found


def _container_state(pod: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(the main container's state name, its details)."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == "unattended":
            for name in ("terminated", "running", "waiting"):
                if name in (status.get("state") or {}):
                    return name, status["state"][name]
    return None, {}


def _job_condition(job: dict[str, Any]) -> dict[str, Any] | None:
    for cond in job.get("status", {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond
    return None


def rows_from_list(doc: dict[str, Any]) -> list[KubeRow]:
    """One row per Job, joined with its newest pod (the `job-name` label)."""
    items = doc.get("items") or []
    jobs = [i for i in items if i.get("kind") == "Job"]
    pods: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in items:
        if item.get("kind") != "Pod":
            continue
        meta = item.get("metadata", {})
        job = (meta.get("labels") or {}).get("job-name") or (meta.get("labels") or {}).get(
            "batch.kubernetes.io/job-name"
        )
        if job:
            pods.setdefault((meta.get("namespace", ""), job), []).append(item)
    rows = [_row(job, pods) for job in jobs]
    rows.sort(key=lambda r: (r.started_at is None, r.started_at or datetime.min, r.job))
    return rows


def _row(job: dict[str, Any], pods: dict[tuple[str, str], list[dict[str, Any]]]) -> KubeRow:
    meta, status = job.get("metadata", {}), job.get("status", {})
    namespace = meta.get("namespace", "")
    mine = sorted(
        pods.get((namespace, meta.get("name", "")), []),
        key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "",
    )
    pod = mine[-1] if mine else None
    row = KubeRow(
        job=meta.get("name", "?"),
        namespace=namespace,
        project=(meta.get("annotations") or {}).get(REPO_ANNOTATION)
        or (meta.get("labels") or {}).get(INSTANCE_LABEL, "?"),
        pod=pod["metadata"].get("name") if pod else None,
        status="pending",
        iteration=None,
        cost_usd=None,
        started_at=_time(status.get("startTime")),
        ended_at=_time(status.get("completionTime")),
    )
    state, details = _container_state(pod) if pod else (None, {})
    outcome = parse_outcome(details.get("message") or "") if state == "terminated" else {}
    condition = _job_condition(job)
    if outcome:
        for key, value in outcome.items():
            setattr(row, key, value)
    elif state == "running":
        row.status = "running"
    elif state == "terminated":
        row.status = "retrying" if condition is None else "failed"
        row.exit_code = details.get("exitCode")
        row.note = details.get("reason")
    if condition is not None:
        row.ended_at = row.ended_at or _time(condition.get("lastTransitionTime"))
        if condition["type"] == "Failed" and not outcome:
            row.status = "failed"
            row.note = condition.get("reason") or row.note
        elif condition["type"] == "Failed" and condition.get("reason") == "DeadlineExceeded":
            row.note = "DeadlineExceeded"
    if len(mine) > 1:
        extra = f"{len(mine)} pods (retried)"
        row.note = f"{row.note}; {extra}" if row.note else extra
    return row
