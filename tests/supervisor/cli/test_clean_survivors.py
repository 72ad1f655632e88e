"""A worker's ``git clean -fdx`` (and ``git reset --hard``) erases ``.unattended/`` but none of
the run's records: the whole run.log, events and telemetry, earlier runs, the budget ledger and
the raw log of the very worker that ran the clean live in ``<git dir>/.unattended/``; the
daemon recreates ``.unattended/`` with a current state.json and a run.log copy that says where
the whole log is (issue 13 item 7). The real daemon, the fake claude, real git."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, run_cli
from tests.e2e.daemon.scenario import foreground
from unattended.contracts.paths import RunPaths

WIPE = "git reset --hard -q && git clean -fdxq"


def test_git_clean_in_a_worker_erases_no_record(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    paths = RunPaths(project)
    assert paths.records == project / ".git" / ".unattended"
    fake_claude.script([["done"]])
    first = foreground(project, hermetic_env)
    assert first.returncode == 0, first.stdout + first.stderr
    first_id = json.loads(paths.state.read_text())["run_id"]
    budget = run_cli(["budget", "init", "--budget", "50000"], hermetic_env, cwd=project)
    assert budget.returncode == 0, budget.stderr

    fake_claude.script([[{"do": "run", "cmd": WIPE}, "text"], ["done"]])
    second = foreground(project, hermetic_env)
    assert second.returncode == 0, second.stdout + second.stderr
    state = json.loads(paths.state.read_text())
    assert state["run_id"] != first_id and state["status"] == "done"
    assert state["iteration"] == 2

    # The records: nothing lost.
    log = paths.run_log.read_text()
    assert f"----- run {first_id} -----" in log and f"new run {state['run_id']}" in log
    assert ".unattended/ was deleted (by the worker?): recreated it" in log
    assert (paths.runs / first_id / "state.json").is_file()
    assert json.loads(paths.budget.read_text())["budget"] == 50000
    assert paths.iteration_stdout(1).stat().st_size > 0  # the raw log of the cleaning worker
    assert paths.iteration_stdout(2).stat().st_size > 0
    telemetry = paths.telemetry.read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in telemetry] == [1, 2]  # not re-appended

    # What people look at is back, and says where the rest is.
    assert json.loads(paths.state_view.read_text()) == state
    view = paths.run_log_view.read_text()
    assert f"(recreated: the whole log is {paths.run_log})" in view.splitlines()[0]
    assert f"----- run {first_id} -----" not in view
    assert "run ended done" in view
    # The records are in no work tree: only .unattended/ shows, as ignored.
    assert git(project, "status", "--porcelain", "--ignored") == "!! .unattended/"
