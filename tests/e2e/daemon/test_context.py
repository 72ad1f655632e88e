"""The context meter inside a real daemon run (fake worker): warn, stop, handoff, next prompt,
and `unattended step` reading the live meter from inside the worker."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

from tests.conftest import run_cli, wait_terminal
from unattended.contracts.paths import RunPaths

FAST = ["--grace-seconds", "2", "--allowed-tools", "Bash", "--model", "claude-sonnet-4-5"]


def test_worker_is_told_to_hand_off_and_the_next_one_gets_the_notes(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    step_cmd = shlex.join(
        [sys.executable, "-m", "unattended", "step", "--complete", "1", "--desc", "parser"]
    )
    fake_claude.script(
        [
            [
                {"do": "usage", "context_tokens": 150_000},
                {"do": "run", "cmd": "true"},
                {"do": "run", "cmd": step_cmd},
                {"do": "usage", "context_tokens": 175_000},
                {"do": "run", "cmd": "printf 'HANDOFF-NOTES-42\\n' > .unattended/handoff.md"},
                {"do": "text", "text": "handed off"},
            ],
            ["done"],
        ]
    )
    proc = run_cli(["start", "--foreground", *FAST], hermetic_env, cwd=project, timeout=120)
    state = wait_terminal(project)
    assert state["status"] == "done", (proc.stdout, proc.stderr)
    runs = [r for r in fake_claude.hook_runs() if r["index"] == 0]
    contexts = [r["additional_context"] for r in runs]
    assert len(contexts) == 3
    assert "75.0% full" in contexts[0] and "Finish the step you are on" in contexts[0]
    assert "Finish the step you are on" in contexts[1]
    assert "87.5% full" in contexts[2] and "handoff.md" in contexts[2]
    calls = fake_claude.calls()
    assert len(calls) == 2
    second_prompt = calls[1]["prompt"]  # read from the worker's stdin, as the real CLI does
    assert "HANDOFF-NOTES-42" in second_prompt
    assert "--resume" not in calls[1]["argv"]  # a handoff means a fresh session
    meter = json.loads((project / ".unattended" / "context-meter.json").read_text())
    assert meter["failures"] == 0 and meter["readings"] >= 3
    log = (project / ".unattended" / "run.log").read_text()
    assert "iter 1 Step 1 completed: Tokens: 75.0%; Status: OK, updated — parser" in log
    # The context ended iteration 1: its cycle line says so, as the seeds' does.
    assert re.search(r"Z Cycle 1 closed: Token threshold exceeded: 8\d\.\d%$", log, re.M), log
    steps = (RunPaths(project).iterations / "0001.steps.jsonl").read_text()
    assert json.loads(steps)["desc"] == "parser"
