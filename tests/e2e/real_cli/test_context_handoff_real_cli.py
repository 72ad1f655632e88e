"""Issue 6 end to end, with the REAL Claude Code CLI and the loopback fake API.

The fake reports growing usage, so our PostToolUse hook (given to the worker through
`--settings`) reaches the warn band, then the stop band; the CLI carries each hook's
additionalContext into its next API request; the worker writes handoff notes; the daemon starts a
fresh worker whose prompt carries them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fakes.fake_api import FakeAnthropic, Turn, Usage
from unattended.contracts.paths import RunPaths

REPO_ROOT = Path(__file__).resolve().parents[3]
WINDOW = 10_000


def test_hook_warns_then_hands_off_to_a_fresh_worker(
    claude_bin, hermetic_env, git_repo, tmp_path
) -> None:
    (git_repo / "PROMPT.md").write_text("Refactor the parser in small steps.\n")
    (git_repo / "unattended.toml").write_text(f"context_window = {WINDOW}\n")
    notes = "HANDOFF-NOTES: parser half done; next: tokenizer"
    write_notes = f"mkdir -p .unattended && echo '{notes}' > .unattended/handoff.md"
    turns = [
        Turn.tool_use("Bash", {"command": "echo step one"}, usage=Usage(7_500, 10)),  # 75 %: warn
        Turn.tool_use("Bash", {"command": "echo step two"}, usage=Usage(9_000, 10)),  # 90 %: stop
        Turn.tool_use("Bash", {"command": write_notes}, usage=Usage(9_100, 10)),
        Turn.text("Handoff notes written; ending the session.", usage=Usage(9_200, 10)),
        Turn.text("Read the notes; all finished.\nUNATTENDED_DONE", usage=Usage(1_000, 10)),
    ]
    with FakeAnthropic(turns) as api:
        env = {**hermetic_env(tmp_path, api.base_url), "PYTHONPATH": str(REPO_ROOT)}
        run = subprocess.run(
            [
                sys.executable, "-m", "unattended", "start", "--foreground",
                "--project", str(git_repo), "--claude-bin", str(claude_bin),
                "--allowed-tools", "Bash", "--branch", "night-work", "--hours", "0.1",
                "--max-iterations", "3", "--grace-seconds", "2", "--worker-timeout", "120",
            ],  # fmt: skip
            cwd=git_repo, env=env, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        requests = api.message_requests()
    assert run.returncode == 0, run.stderr + run.stdout
    assert len(requests) == 5, [r.raw_body[:200] for r in requests]
    # The warn text reached the worker's next request; then the stop text.
    assert requests[1].contains("Finish the step you are on")
    assert not requests[1].contains("Stop now: write handoff notes")
    assert requests[2].contains("Stop now: write handoff notes")
    # The next worker was fresh (a new prompt, not a resumed session) and carries the notes.
    assert requests[4].contains(notes)
    assert requests[4].contains("Refactor the parser")
    paths = git_repo / ".unattended"
    lines = [json.loads(x) for x in RunPaths(git_repo).telemetry.read_text().splitlines()]
    assert [x["handed_off"] for x in lines] == [True, False]
    assert lines[0]["context_band"] == "stop" and lines[0]["context_window"] == WINDOW
    assert lines[1]["resumed_session"] is False
    meter = json.loads((paths / "context-meter.json").read_text())
    assert meter.get("failures", 0) == 0
    state = json.loads((paths / "state.json").read_text())
    assert state["status"] == "done"
