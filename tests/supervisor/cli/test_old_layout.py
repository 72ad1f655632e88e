"""A project that ran an earlier version keeps its history: the next start moves the records it
left in ``.unattended/`` into the git dir, once, and says so (issue 13 item 7)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.daemon.scenario import foreground
from unattended.contracts.paths import RunPaths


def test_the_first_start_moves_an_earlier_versions_records(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    paths = RunPaths(project)
    old = project / ".unattended"
    (old / "runs" / "20261101T000000Z").mkdir(parents=True)
    (old / "runs" / "20261101T000000Z" / "telemetry.jsonl").write_text("")
    (old / "run.log").write_text("2026-11-01T00:00:00Z an earlier version's line\n")
    (old / "budget.json").write_text('{"kept": true}\n')
    fake_claude.script([["done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = paths.run_log.read_text()
    assert log.startswith("2026-11-01T00:00:00Z an earlier version's line\n")
    assert "(moved run.log, runs, budget.json from .unattended/ to " in log
    assert (paths.runs / "20261101T000000Z" / "telemetry.jsonl").exists()
    assert paths.budget.read_text() == '{"kept": true}\n'
    assert not (old / "runs").exists() and not (old / "budget.json").exists()
