"""``max_logs_mb`` caps the raw worker logs of every run together: before each worker the oldest
go first (earlier runs' before this run's), leaving room for that worker's own cap, and
run.log says what went (issue 13 item 14). The real daemon, the fake claude spewing output."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.daemon.scenario import foreground, write_toml
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.supervisor.records.rawlogs import RAW_LOG

MB = 1024 * 1024
SPEW = {"do": "spew", "mb": 0.06}
THREE = [[SPEW, "commit", "text"], [SPEW, "commit", "text"], [SPEW, "commit", "done"]]


def _raw_logs(paths: RunPaths) -> list[Path]:
    found = [p for p in paths.records.rglob("*") if RAW_LOG.match(p.name)]
    return sorted(found)


def test_raw_logs_stay_under_the_total_cap_oldest_first(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    assert Settings().max_logs_mb == 2000
    paths = RunPaths(project)
    write_toml(project, max_logs_mb=0.45, max_iteration_log_mb=0.1)
    fake_claude.script(THREE)
    first = foreground(project, hermetic_env)
    assert first.returncode == 0, first.stdout + first.stderr
    first_id = json.loads(paths.state.read_text())["run_id"]
    oldest = paths.iteration_stdout(1).stat().st_size
    assert oldest > 0.05 * MB

    fake_claude.script(THREE)
    second = foreground(project, hermetic_env)
    assert second.returncode == 0, second.stdout + second.stderr

    logs = _raw_logs(paths)
    total = sum(p.stat().st_size for p in logs)
    assert total <= 0.45 * MB
    archived = paths.runs / first_id / "iterations"
    assert not (archived / "0001.jsonl").exists()  # the oldest went first
    assert paths.iteration_stdout(3).exists() and paths.iteration_stdout(2).exists()
    lines = [line for line in paths.run_log.read_text().splitlines() if "max_logs_mb" in line]
    assert lines, "pruning was not logged"
    assert "raw logs over max_logs_mb = 0.45: removed the" in lines[0]
    assert f"runs/{first_id}/iterations/0001.jsonl" in lines[0]
    for kept in ("state.json", "telemetry.jsonl"):  # only raw logs go, never the run's record
        assert (paths.runs / first_id / kept).exists()
