"""The CLI's own auto-compaction, with the REAL Claude Code CLI on both supported versions: a
200k-window model (claude-sonnet-4-6) compacts by itself once a request reaches 167 000 tokens;
our stop band (lowered to 78.5 % of the window) reaches the worker first, and a compaction that
happens anyway is recorded per iteration (telemetry, then `metrics --halts` and `advise`)."""

from __future__ import annotations

import json

from tests.e2e.real_cli.test_supervisor_real_cli import start_foreground
from tests.fakes.fake_api import FakeAnthropic, Turn, Usage
from unattended.contracts.paths import RunPaths


def bash(text: str, tokens: int) -> Turn:
    return Turn.tool_use(
        "Bash", {"command": f"echo {text}", "description": text}, usage=Usage(tokens, 20)
    )


def test_a_compaction_by_the_cli_is_recorded_and_the_stop_band_came_first(
    claude_bin, hermetic_env, git_repo, tmp_path
) -> None:
    (git_repo / "PROMPT.md").write_text("Work through the steps.\n")
    turns = [
        bash("one", 1000),
        bash("two", 1000),
        bash("three", 1000),
        bash("big", 160_000),  # 80 %: the CLI does not compact yet, our stop band is reached
        bash("bigger", 170_000),  # past 167 000: the CLI compacts before the next request
        Turn.text("<summary>Ran the steps one to bigger.</summary>", usage=Usage(5000, 300)),
        Turn.text("All steps are done.", usage=Usage(2000, 20)),
    ]
    with FakeAnthropic(turns) as api:
        env = hermetic_env(tmp_path, api.base_url)
        run = start_foreground(
            claude_bin, git_repo, env, "--model", "claude-sonnet-4-6", "--max-iterations", "1"
        )
        requests = api.message_requests()
    assert run.returncode == 3, run.stderr + run.stdout  # the iteration cap
    # The hook's stop text reached the request after the 160k reading: before the compaction.
    assert requests[4].contains("Stop now: write handoff notes")
    assert any(r.contains("create a detailed summary of the conversation") for r in requests)
    paths = git_repo / ".unattended"
    (line,) = [json.loads(x) for x in RunPaths(git_repo).telemetry.read_text().splitlines()]
    assert line["compactions"] == 1
    assert 167_000 <= line["compact_pre_tokens"] < 171_000
    assert line["context_window"] == 200_000
    assert line["context_band"] == "stop"
    # The compaction call is in modelUsage (not in result.usage): it is counted.
    assert line["input_tokens"] >= 1000 * 3 + 160_000 + 170_000 + 5000 + 2000
    log = (paths / "run.log").read_text()
    assert "the CLI compacted worker 1's context by itself" in log
    meter = json.loads((paths / "context-meter.json").read_text())
    assert meter["last_reading"]["compact_at"] == 167_000


def test_the_first_worker_without_a_model_is_measured_against_its_real_window(
    claude_bin, hermetic_env, git_repo, tmp_path
) -> None:
    """No --model: the CLI's default (2.1.197 claude-opus-4-8[1m], 2.1.332 claude-opus-5-5)
    has a 1M window. 150k tokens are 15 %: no warning (the daemon alone would have said 75 %)."""
    (git_repo / "PROMPT.md").write_text("Work through the steps.\n")
    turns = [bash("one", 150_000), Turn.text("Done with the step.", usage=Usage(151_000, 20))]
    with FakeAnthropic(turns) as api:
        env = hermetic_env(tmp_path, api.base_url)
        run = start_foreground(claude_bin, git_repo, env, "--max-iterations", "1")
        requests = api.message_requests()
    assert run.returncode == 3, run.stderr + run.stdout
    assert not requests[1].contains("unattended context meter")
    paths = git_repo / ".unattended"
    reading = json.loads((paths / "context-meter.json").read_text())["last_reading"]
    assert (reading["window"], reading["percent"], reading["band"]) == (1_000_000, 15.0, "normal")
    (line,) = [json.loads(x) for x in RunPaths(git_repo).telemetry.read_text().splitlines()]
    assert line["context_window"] == 1_000_000
