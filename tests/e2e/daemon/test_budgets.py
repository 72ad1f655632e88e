"""Budgets through the daemon: steps, cost alerts, the runway, transcript pricing, model
escalation and quota pacing (issue 6), with the fake claude as the worker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import read_state, run_cli, wait_terminal
from unattended.contracts.paths import RunPaths

FAST = ["--grace-seconds", "2", "--allowed-tools", "Bash"]


def test_step_calls_land_in_run_log_and_telemetry(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    step = (
        f"{sys.executable} -m unattended step --complete 1 --desc 'wrote the parser' --tokens 50000"
    )
    fake_claude.script([[{"do": "run", "cmd": step}, "commit", "done"]])
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    state = wait_terminal(project)
    assert state["status"] == "done"
    log = (project / ".unattended" / "run.log").read_text()
    assert "Step 1 completed: Tokens: 25.0%; Status: OK, updated" in log
    assert "Cycle 1 closed: the worker reported UNATTENDED_DONE" in log
    line = json.loads((RunPaths(project).telemetry).read_text().splitlines()[-1])
    assert line["steps"] and line["steps"][0]["step"] == 1
    assert line["steps"][0]["desc"] == "wrote the parser"


def test_cost_cap_alerts_then_runway_refuses_the_next_iteration(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script(
        [[{"do": "usage", "cost_usd": 0.10, "input_tokens": 1000}, "commit", "text"]]
    )
    proc = run_cli(
        ["start", "--foreground", *FAST, "--max-cost-usd", "0.35"], hermetic_env, cwd=project
    )
    assert proc.returncode == 3, proc.stderr
    state = read_state(project)
    assert state["status"] == "capped" and state["iteration"] == 3
    assert "$0.05 left" in state["stop_reason"] and "needs ~$0.10" in state["stop_reason"]
    log = (project / ".unattended" / "run.log").read_text()
    assert "budget warn: cost at 86% ($0.30 of $0.35)" in log
    assert log.count("budget warn") == 1


def test_runway_uses_earlier_runs_for_a_new_run(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script(
        [[{"do": "usage", "cost_usd": 0.30, "input_tokens": 1000}, "commit", "done"]]
    )
    first = run_cli(["start", "--foreground", *FAST], hermetic_env, cwd=project)
    assert first.returncode == 0, first.stderr
    # A new run capped below what the project's iterations cost is refused before any worker.
    second = run_cli(
        ["start", "--foreground", *FAST, "--max-cost-usd", "0.20"], hermetic_env, cwd=project
    )
    assert second.returncode == 3, second.stderr
    state = read_state(project)
    assert state["status"] == "capped" and state["iteration"] == 0
    assert "needs ~$0.30" in state["stop_reason"], state["stop_reason"]
    assert len(fake_claude.calls()) == 1


def test_killed_worker_is_priced_from_its_transcript(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    usage = {
        "do": "usage",
        "input_tokens": 40_000,
        "output_tokens": 2_000,
        "context_tokens": 40_000,
    }
    fake_claude.script([[usage, "commit", "ignore_sigint", "ignore_sigterm", "hang"], ["done"]])
    proc = run_cli(
        ["start", "--foreground", "--worker-timeout", "3", "--grace-seconds", "1",
         "--allowed-tools", "Bash"],
        hermetic_env, cwd=project, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    first = json.loads((RunPaths(project).telemetry).read_text().splitlines()[0])
    assert first["outcome"] == "timeout"
    assert first["usage_source"] == "transcript"
    assert first["input_tokens"] > 0 and first["total_cost_usd"] > 0
    assert read_state(project)["cost_usd"] >= first["total_cost_usd"]


def test_escalation_moves_to_the_stronger_model_and_restarts_the_count(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    (project / "unattended.toml").write_text(
        "gutter_iterations = 3\nmax_launches_per_minute = 100\n"
    )
    fake_claude.script([["text"]])  # never any progress
    proc = run_cli(
        ["start", "--foreground", *FAST, "--model", "base-model",
         "--escalate-model", "strong-model", "--escalate-after", "2"],
        hermetic_env, cwd=project, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 5, proc.stderr
    models = [c["argv"][c["argv"].index("--model") + 1] for c in fake_claude.calls()]
    assert models[:2] == ["base-model", "base-model"]
    assert set(models[2:]) == {"strong-model"}
    assert len(models) >= 5  # the no-progress count started again after escalating
    log = (project / ".unattended" / "run.log").read_text()
    assert "escalating the worker model from base-model to strong-model" in log
    telemetry = (RunPaths(project).telemetry).read_text().splitlines()
    lines = [json.loads(x) for x in telemetry]
    assert [x["escalated_model"] for x in lines][:3] == [False, False, True]


def test_quota_pacing_waits_for_the_window_reset(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    (project / "unattended.toml").write_text("limit_margin_s = 1\n")
    limit = {"do": "rate_limit", "status": "allowed_warning", "type": "five_hour",
             "resets_in": 3, "utilization": 0.9}  # fmt: skip
    fake_claude.script([[limit, "commit", "text"], ["commit", "done"]])
    proc = run_cli(
        ["start", "--foreground", *FAST, "--max-quota-pct", "80"], hermetic_env, cwd=project
    )
    assert proc.returncode == 0, proc.stderr
    state = read_state(project)
    assert state["quota"]["five_hour"]["utilization"] is not None
    events = [
        json.loads(x) for x in (RunPaths(project).events).read_text().splitlines()
    ]
    waits = [e for e in events if e["kind"] == "wait"]
    assert waits and "quota" in waits[0]["message"]
    spawns = [e["epoch"] for e in events if e["kind"] == "spawn"]
    assert len(spawns) == 2 and spawns[1] - spawns[0] >= 3
