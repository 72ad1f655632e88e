"""Commands run from a subdirectory see the run `start` began at the work tree's top, and say
which project they used (issue 14 item 15); `stop --wait` says what it waits for (item 14) and
`stop --json` / `logs --json` print only JSON on stdout (item 4)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import read_state, run_cli, wait_for, wait_terminal
from tests.e2e.daemon.scenario import detached


def test_status_stop_and_logs_from_a_subdirectory(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)
    fake_claude.script([[{"do": "sleep", "seconds": 30}, "commit"]])
    started = detached(project, hermetic_env)
    assert f"for {project}" in started.stdout
    assert wait_for(lambda: read_state(project).get("worker_pid"), 30)

    status = run_cli(["status", "--json"], hermetic_env, cwd=sub)
    data = json.loads(status.stdout)
    assert (data["project"], data["alive"]) == (str(project), True)
    human = run_cli(["status"], hermetic_env, cwd=sub).stdout
    assert f"project    {project}" in human
    # --project naming a subdirectory means the same project.
    assert json.loads(run_cli(["status", "--json", "--project", str(sub)], hermetic_env)
                      .stdout)["run_id"] == data["run_id"]  # fmt: skip

    logs = run_cli(["logs", "-n", "50"], hermetic_env, cwd=sub)
    assert logs.returncode == 0 and "new run" in logs.stdout
    assert logs.stderr == f"unattended: run.log of {project}\n"
    jlogs = run_cli(["logs", "--json", "-n", "50"], hermetic_env, cwd=sub)
    events = [json.loads(line) for line in jlogs.stdout.splitlines()]
    assert events and all(isinstance(e, dict) for e in events)

    stop = run_cli(["stop", "--now", "--wait", "--timeout", "60", "--json"], hermetic_env, cwd=sub)
    assert stop.returncode == 0, stop.stderr
    doc = json.loads(stop.stdout)  # one document, nothing else on stdout
    assert doc["project"] == str(project) and doc["requested"] == "now"
    assert doc["run_id"] == data["run_id"] and doc["final_status"] == "stopped"
    assert doc["timed_out"] is False
    assert f"waiting for daemon pid {data['pid']} to exit: " in stop.stderr
    assert wait_terminal(project)["status"] == "stopped"
    again = run_cli(["stop"], hermetic_env, cwd=sub)
    assert (again.returncode, again.stdout) == (0, f"no active run in {project}\n")


def test_stop_wait_prints_a_line_per_change(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([[{"do": "sleep", "seconds": 2}, "commit", "text"]] * 3)
    detached(project, hermetic_env)
    assert wait_for(lambda: read_state(project).get("worker_pid"), 30)
    stop = run_cli(["stop", "--wait", "--timeout", "90"], hermetic_env, cwd=project, timeout=120)
    assert stop.returncode == 0, stop.stderr
    lines = stop.stdout.splitlines()
    assert lines[0] == f"stop requested in {project}: the run ends after the current iteration"
    waiting = [ln for ln in lines if ln.startswith("waiting for daemon pid ")]
    assert waiting and "worker pid" in waiting[0] and "still running" in waiting[0]
    assert len(set(waiting)) == len(waiting)  # a line per change, not per poll
    assert lines[-1].startswith("final status: stopped")
    assert "\x1b[" not in stop.stdout  # no colour or spinner in a pipe
