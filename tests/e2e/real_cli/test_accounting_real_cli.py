"""Accounting against the REAL Claude Code CLI, on both supported versions (issue 11): three
resumed iterations through the daemon; the recorded cost equals what the CLI itself says the
session cost (2.1.332: its last, cumulative figure; 2.1.197: the sum of its per-invocation
figures), never the sum of 2.1.332's cumulative figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.real_cli.conftest import claude_version
from tests.e2e.real_cli.test_supervisor_real_cli import start_foreground
from tests.fakes.fake_api import FakeAnthropic, Turn, Usage
from unattended.contracts.paths import RunPaths

# The figures the measurements used (/work/notes/cli-facts-332.md §2); on claude-sonnet-4-6
# both versions price one call at $0.012225 ($3/$15 per million, 1.25x writes, 0.1x reads).
CALL = Usage(
    input_tokens=1000,
    output_tokens=500,
    cache_read_input_tokens=2000,
    cache_creation_input_tokens=300,
)
CALL_COST = 0.012225


def _results(repo: Path, iterations: int) -> list[dict]:
    found = []
    for n in range(1, iterations + 1):
        log = RunPaths(repo).iterations / f"{n:04d}.jsonl"
        for raw in log.read_text().splitlines():
            event = json.loads(raw) if raw.strip() else {}
            if event.get("type") == "result":
                found.append(event)
    return found


def test_three_resumed_iterations_record_the_sessions_cost(
    claude_bin, hermetic_env, git_repo, tmp_path
) -> None:
    version = claude_version(claude_bin)
    (git_repo / "PROMPT.md").write_text("Append a line to work.txt and commit it.\n")
    (git_repo / "unattended.toml").write_text('session_policy = "continue"\n')
    command = "echo work >> work.txt && git add work.txt && git commit -q -m 'worker commit'"
    turns = []
    for _ in range(3):  # each iteration: one Bash commit, then a text answer
        turns.append(
            Turn.tool_use("Bash", {"command": command, "description": "commit"}, usage=CALL)
        )
        turns.append(Turn.text("Committed one more line.", usage=CALL))
    with FakeAnthropic(turns) as api:
        env = hermetic_env(tmp_path, api.base_url)
        run = start_foreground(claude_bin, git_repo, env, "--model", "claude-sonnet-4-6")
    assert run.returncode == 3, run.stderr + run.stdout  # capped by --max-iterations 3
    state = json.loads((git_repo / ".unattended" / "state.json").read_text())
    telemetry = [
        json.loads(x)
        for x in RunPaths(git_repo).telemetry.read_text().splitlines()
    ]
    assert [t["resumed_session"] for t in telemetry] == [False, True, True]
    results = _results(git_repo, 3)
    assert len(results) == 3
    printed = [r["total_cost_usd"] for r in results]
    if version == "2.1.332":
        assert printed == pytest.approx([2 * CALL_COST, 4 * CALL_COST, 6 * CALL_COST])
        session_cost = printed[-1]  # cumulative: the last figure is the session's
    else:
        assert printed == pytest.approx([2 * CALL_COST] * 3)
        session_cost = sum(printed)  # per invocation: they add up
    assert state["cost_usd"] == pytest.approx(session_cost, abs=1e-6)
    assert state["cost_usd_cli"] == pytest.approx(session_cost, abs=1e-6)
    assert state["cost_usd_priced"] == pytest.approx(6 * CALL_COST, abs=1e-6)
    assert [t["total_cost_usd"] for t in telemetry] == pytest.approx([2 * CALL_COST] * 3)
    assert state["input_tokens"] == 6 * CALL.input_tokens  # six calls, each counted once
    assert state["cli_version"] == version
    assert {t["cli_version"] for t in telemetry} == {version}
    assert {t["context_window"] for t in telemetry} == {200_000}  # sonnet-4-6 is 200k here
    print(
        f"cli {version}: recorded ${state['cost_usd']:.6f}, the CLI's session ${session_cost:.6f}"
    )
