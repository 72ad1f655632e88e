"""The Prometheus textfile and `metrics --prometheus`: parsed with prometheus_client's own parser,
compared with state.json."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import run_cli
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.contracts.state import LastIteration, RunState
from unattended.contracts.status import Outcome, RunStatus
from unattended.supervisor.records import prometheus as prom

NOW = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
FAST = ["--grace-seconds", "1", "--allowed-tools", "Bash,Write"]


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value}, after checking every family's type."""
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type in ("gauge", "counter"), family.name
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float:
    found = [v for (n, lab), v in parsed.items() if n == name and set(labels.items()) <= lab]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def _state(**fields) -> RunState:  # noqa: ANN003
    base = dict(
        run_id="20261201-220000-ab12",
        status=RunStatus.WAITING,
        project='/home/me/odd "repo"\\x',
        started_at=NOW,
        updated_at=NOW,
        deadline=NOW + timedelta(hours=8),
        iteration=3,
        max_iterations=200,
        input_tokens=1200,
        output_tokens=340,
        cache_creation_tokens=50,
        cache_read_tokens=9000,
        cost_usd=0.4375,
        model="claude-sonnet-4-5",
        resume_at=NOW + timedelta(minutes=30),
        last_iteration=LastIteration(
            number=3, outcome=Outcome.PROGRESS, ended_at=NOW - timedelta(minutes=1)
        ),
    )
    base.update(fields)
    return RunState(**base)


def test_render_parses_and_carries_the_state() -> None:
    st = _state()
    text = prom.render([prom.RunSample(st, "waiting", "night-work", 0.42)])
    parsed = samples(text)
    ids = {"project": st.project, "run_id": st.run_id}
    info = {**ids, "branch": "night-work", "model": "claude-sonnet-4-5"}
    assert value(parsed, "unattended_run_info", **info) == 1
    one_hot = {
        dict(lab)["status"]: v for (n, lab), v in parsed.items() if n == "unattended_run_status"
    }
    assert one_hot.pop("waiting") == 1 and set(one_hot.values()) == {0}
    assert "crashed" in one_hot and "done" in one_hot
    assert value(parsed, "unattended_iterations_total", **ids) == 3
    for kind, count in (
        ("input", 1200),
        ("output", 340),
        ("cache_creation", 50),
        ("cache_read", 9000),
    ):
        assert value(parsed, "unattended_tokens_total", kind=kind) == count
    assert value(parsed, "unattended_cost_usd_total") == pytest.approx(0.4375)
    assert value(parsed, "unattended_deadline_timestamp_seconds") == st.deadline.timestamp()
    last = st.last_iteration.ended_at.timestamp()
    assert value(parsed, "unattended_last_iteration_timestamp_seconds") == last
    assert value(parsed, "unattended_waiting_until_timestamp_seconds") == st.resume_at.timestamp()
    assert value(parsed, "unattended_context_used_ratio") == pytest.approx(0.42)


def test_unknowns_are_left_out_and_an_ended_run_waits_for_nothing() -> None:
    st = _state(status=RunStatus.DONE, last_iteration=None, model=None)
    parsed = samples(prom.render([prom.RunSample(st, "done", None, None)]))
    names = {n for n, _ in parsed}
    assert "unattended_last_iteration_timestamp_seconds" not in names
    assert "unattended_context_used_ratio" not in names
    assert value(parsed, "unattended_waiting_until_timestamp_seconds") == 0
    assert value(parsed, "unattended_run_info", branch="", model="") == 1


def test_names_follow_the_conventions() -> None:
    text = prom.render([prom.RunSample(_state(), "waiting", "b", 0.1)])
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE"))
    for name, kind in types.items():
        assert name.startswith("unattended_")
        assert name.endswith("_total") == (kind == "counter"), name
        assert "usd" not in name or name.endswith("_usd_total")


def test_textfile_suffix_is_checked() -> None:
    with pytest.raises(ValueError, match=r"must end in \.prom"):
        Settings(metrics_textfile="/tmp/metrics.txt")


def test_a_textfile_that_cannot_be_written_warns_once(tmp_path: Path) -> None:
    warnings: list[str] = []
    ctx = SimpleNamespace(
        settings=Settings(metrics_textfile=str(tmp_path / "missing" / "u.prom")),
        project=tmp_path,
        state=_state(),
        git_dir=tmp_path,
        paths=RunPaths(tmp_path),
    )
    prom.export_textfile(ctx, warnings.append)
    prom.export_textfile(ctx, warnings.append)
    assert len(warnings) == 1 and "cannot write the metrics textfile" in warnings[0]
    (tmp_path / "missing").mkdir()
    prom.export_textfile(ctx, warnings.append)
    assert (tmp_path / "missing" / "u.prom").stat().st_mode & 0o777 == 0o644


def test_the_daemon_textfile_matches_state_json(
    project: Path,
    hermetic_env: dict[str, str],
    fake_claude,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    fake_claude.script([[{"do": "commit"}, "text"], [{"do": "commit"}, "done"]])
    textfile = tmp_path / "textfile" / "unattended.prom"
    textfile.parent.mkdir()
    proc = run_cli(
        ["start", "--foreground", *FAST, "--metrics-textfile", str(textfile)],
        hermetic_env,
        cwd=project,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    state = json.loads((RunPaths(project).state).read_text())
    parsed = samples(textfile.read_text())
    ids = {"project": state["project"], "run_id": state["run_id"]}
    assert value(parsed, "unattended_run_info", **ids, branch="work") == 1
    assert value(parsed, "unattended_run_status", **ids, status="done") == 1
    assert value(parsed, "unattended_iterations_total", **ids) == state["iteration"] == 2
    for kind in ("input", "output", "cache_creation", "cache_read"):
        assert value(parsed, "unattended_tokens_total", kind=kind) == state[f"{kind}_tokens"]
    assert value(parsed, "unattended_cost_usd_total") == pytest.approx(state["cost_usd"])
    deadline = datetime.fromisoformat(state["deadline"].replace("Z", "+00:00")).timestamp()
    assert value(parsed, "unattended_deadline_timestamp_seconds") == pytest.approx(deadline)
    ended = state["last_iteration"]["ended_at"].replace("Z", "+00:00")
    assert value(parsed, "unattended_last_iteration_timestamp_seconds") == pytest.approx(
        datetime.fromisoformat(ended).timestamp()
    )


def test_metrics_prometheus_lists_the_registry(project: Path, hermetic_env: dict[str, str]) -> None:
    from unattended.supervisor.run.registry import register

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    st = _state(project=str(project), pid=dead.pid, status=RunStatus.RUNNING)
    RunPaths(project).records.mkdir(parents=True)
    RunPaths(project).state.write_text(st.to_json())
    root = Path(hermetic_env["XDG_STATE_HOME"]) / "unattended"
    register(project, dead.pid, None, st.run_id, NOW.isoformat(), root=root)
    proc = run_cli(["metrics", "--prometheus"], hermetic_env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    parsed = samples(proc.stdout)
    ids = {"project": str(project), "run_id": st.run_id}
    assert value(parsed, "unattended_run_status", **ids, status="crashed") == 1
    assert value(parsed, "unattended_run_status", **ids, status="running") == 0
    assert value(parsed, "unattended_iterations_total", **ids) == 3
    assert value(parsed, "unattended_run_info", **ids, branch="work") == 1
