"""The real daemon reading what real Claude Code CLIs printed (issue 11): the corpus of real
captures replayed by the fake claude, and the fake playing the measured differences of CLI
2.1.197 and 2.1.332 (cumulative resume, several results, other models, fatal retries)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_state, run_cli
from tests.e2e.daemon.scenario import FAST, run_log
from tests.real_corpus import STREAMS, stream_expected, stream_files
from unattended.contracts.paths import RunPaths

EXPECTED = stream_expected()
REPLAYED = [path.name for path in stream_files()]  # every real capture of the corpus


def telemetry(project: Path) -> list[dict[str, Any]]:
    path = RunPaths(project).telemetry
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start(project: Path, env: dict[str, str], *args: str) -> Any:
    return run_cli(["start", "--foreground", *FAST, *args], env, cwd=project, timeout=120)


@pytest.mark.parametrize("name", REPLAYED)
def test_a_real_capture_through_the_daemon(
    name: str, project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([[{"do": "replay", "file": str(STREAMS / name)}]])
    start(project, hermetic_env, "--max-iterations", "1")
    (line,) = telemetry(project)
    expected = EXPECTED[name]
    result = expected["results"][-1]
    model_usage = result["modelUsage"]
    assert line["cost_usd_cli"] == pytest.approx(result["total_cost_usd"], abs=1e-6)
    assert line["total_cost_usd"] == pytest.approx(
        max(line["cost_usd_cli"], line["cost_usd_priced"]), abs=1e-6
    )
    assert line["cli_version"] == expected["claude_code_version"]
    assert line["results"] == 1
    if model_usage:
        assert line["input_tokens"] == sum(m["inputTokens"] for m in model_usage.values())
        assert line["cache_read_tokens"] == sum(
            m["cacheReadInputTokens"] for m in model_usage.values()
        )
        assert set(line["tokens_by_model"]) <= set(model_usage)
        assert line["context_window"] == model_usage[expected["init_model"]]["contextWindow"]
    if result["is_error"]:
        assert line["outcome"] == "api-error"
    else:
        assert line["outcome"] in ("no-progress", "progress")
    state = read_state(project)
    assert state["cost_usd"] == pytest.approx(line["total_cost_usd"], abs=1e-6)
    assert state["cli_version"] == expected["claude_code_version"]


# The fake API's figures in the measurements (cli-facts-332 §2) on the fake's default model
# (claude-opus-4-8[1m], $5/$25 per million): $0.020375 per invocation, for both versions.
PER_CALL = {
    "do": "usage",
    "input_tokens": 1000,
    "output_tokens": 500,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 300,
}
PER_CALL_COST = 0.020375


@pytest.mark.parametrize("version", ["2.1.197", "2.1.332"])
def test_three_resumed_iterations_cost_what_the_session_cost(
    version: str, project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    """2.1.332 prints 0.020375, 0.04075, 0.061125 on resume (cumulative), 2.1.197 0.020375
    each time. Either way the run cost 0.061125, and a $0.07 cap does not stop it early (adding
    the cumulative figures would have recorded $0.12 and capped it after two iterations)."""
    (project / "unattended.toml").write_text('session_policy = "continue"\n')
    fake_claude.script([[PER_CALL, "commit", "text"]])
    env = {**hermetic_env, "FAKE_CLAUDE_VERSION": version}
    proc = start(project, env, "--max-iterations", "3", "--max-cost-usd", "0.07")
    lines = telemetry(project)
    assert len(lines) == 3, proc.stdout + proc.stderr + run_log(project)
    assert [t["resumed_session"] for t in lines] == [False, True, True]
    assert [t["cost_usd_cli"] for t in lines] == pytest.approx([PER_CALL_COST] * 3)
    assert [t["cost_usd_priced"] for t in lines] == pytest.approx([PER_CALL_COST] * 3)
    state = read_state(project)
    assert state["cost_usd"] == pytest.approx(3 * PER_CALL_COST, abs=1e-6)
    assert state["cli_version"] == version
    assert state["input_tokens"] == 3 * 1000  # never the session's running total
    expected_basis = "since_last_result" if version == "2.1.332" else "process"
    assert {t["usage_basis"] for t in lines} == {expected_basis}
    # What the CLI itself says the session cost: its last cumulative figure on 2.1.332, the
    # sum of its per-invocation figures on 2.1.197.
    printed = [
        json.loads(x)["total_cost_usd"]
        for n in (1, 2, 3)
        for x in (RunPaths(project).iterations / f"{n:04d}.jsonl")
        .read_text()
        .splitlines()
        if '"result"' in x and json.loads(x).get("type") == "result"
    ]
    session_cost = printed[-1] if version == "2.1.332" else sum(printed)
    assert state["cost_usd"] == pytest.approx(session_cost, abs=1e-6)


def test_a_marker_in_the_first_of_two_results_ends_the_run_done(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script(
        [[{"do": "background", "input_tokens": 400, "output_tokens": 40}, "commit", "done"]]
    )
    proc = start(project, hermetic_env)
    assert proc.returncode == 0, proc.stderr
    (line,) = telemetry(project)
    assert line["outcome"] == "done" and line["results"] == 2
    # DEFAULT_USAGE of the fake (1200 in) plus the follow-up turn's 400.
    assert line["input_tokens"] == 1200 + 400


def test_every_models_tokens_and_the_larger_price_count(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([[{"do": "usage", "cache_1h": 4000}, "subagent", "commit", "done"]])
    start(project, hermetic_env, "--allowed-tools", "Bash,Write,Task")
    (line,) = telemetry(project)
    assert set(line["tokens_by_model"]) == {"claude-opus-4-8[1m]", "claude-haiku-4-5-20251001"}
    assert line["input_tokens"] == 1200 + 2000
    haiku = (2000 * 1.0 + 300 * 5.0) / 1e6
    assert line["cost_usd_cli"] == pytest.approx(
        (1200 * 5 + 350 * 25 + 18000 * 0.5 + 4000 * 10) / 1e6 + haiku, abs=1e-6
    )
    # The published price of opus-4-8[1m] is the fake's price: both agree here.
    assert line["cost_usd_priced"] == pytest.approx(line["cost_usd_cli"], rel=1e-6)


def test_a_killed_worker_with_a_subagent_is_priced_like_ccusage_would(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script(
        [
            [{"do": "usage", "partial_lines": True, "context_tokens": 40_000}, "subagent",
             {"do": "say", "text": "Now the fix."}, "commit", "ignore_sigint", "ignore_sigterm",
             "hang"],
            ["done"],
        ]
    )  # fmt: skip
    start(project, hermetic_env, "--worker-timeout", "4", "--allowed-tools", "Bash,Write,Task")
    first = telemetry(project)[0]
    assert first["outcome"] == "timeout" and first["usage_source"] == "transcript"
    assert first["cost_usd_cli"] is None
    assert "claude-haiku-4-5-20251001" in first["tokens_by_model"]
    from unattended.supervisor.worker.transcript import transcript_usage

    home = Path(hermetic_env["HOME"]) / ".claude" / "projects"
    (path,) = [p for p in home.glob("*/*.jsonl") if p.stem == first_session(project)]
    assert first["cost_usd_priced"] == pytest.approx(transcript_usage(path).cost_usd(), abs=1e-6)


def first_session(project: Path) -> str:
    log = (RunPaths(project).iterations / "0001.jsonl").read_text().splitlines()
    return next(json.loads(x)["session_id"] for x in log if '"init"' in x)


def test_a_retry_of_a_bad_key_ends_the_worker_at_once(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    """The CLI would retry the 401 for ~3 minutes; the first api_retry event is enough."""
    fake_claude.script([[{"do": "auth_error", "retries": 10, "retry_delay": 20}]])
    proc = start(project, hermetic_env)
    assert proc.returncode == 7, proc.stdout + proc.stderr  # failed: fatal
    (line,) = telemetry(project)
    assert line["outcome"] == "api-error" and "authentication failed" in line["reason"]
    stream = (RunPaths(project).iterations / "0001.jsonl").read_text()
    assert stream.count('"api_retry"') == 1  # not the other nine
    assert "authentication failed: API error 401 (authentication_failed)" in run_log(project)


def test_an_untested_cli_version_logs_one_warning(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    fake_claude.script([["commit", "text"]])
    start(project, {**hermetic_env, "FAKE_CLAUDE_VERSION": "2.0.14"}, "--max-iterations", "2")
    log = run_log(project)
    assert log.count("Claude Code CLI 2.0.14 is outside the tested range 2.1.197 to 2.1.332") == 1
