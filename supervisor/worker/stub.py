"""The demo's stand-in for ``claude -p``: no account, no network, stdlib only.

It speaks the same stream-json as the real CLI (system init, an assistant tool_use, the user
tool_result, a final result with usage and cost) and does real work the supervisor can verify
from git: one commit per iteration. It reports ``UNATTENDED_DONE`` once the iteration number
(``UNATTENDED_ITERATION``, set by the daemon) reaches ``UNATTENDED_DEMO_STEPS`` (default 3).
Any command-line arguments (the daemon passes the real CLI's) are accepted and ignored.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from unattended.contracts.names import ENV_DEMO_STEPS, ENV_ITERATION

MODEL = "stub-worker"
PAUSE_S = 0.6  # long enough that the demo's log reads like something is happening


def emit(event: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main() -> int:
    iteration = int(os.environ.get(ENV_ITERATION, "1"))
    steps = int(os.environ.get(ENV_DEMO_STEPS, "3"))
    session = str(uuid.uuid4())
    started = time.monotonic()
    emit(
        {
            "type": "system",
            "subtype": "init",
            "session_id": session,
            "model": MODEL,
            "cwd": os.getcwd(),
            "tools": ["Bash"],
            "claude_code_version": "stub",
        }
    )
    time.sleep(PAUSE_S)
    note = Path("demo-progress.md")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = f"append step {iteration} to {note} && git commit"
    tool_id = f"toolu_stub_{iteration:04d}"
    emit(
        {
            "type": "assistant",
            "session_id": session,
            "parent_tool_use_id": None,
            "message": {
                "id": f"msg_stub_{iteration}a",
                "model": MODEL,
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": "Bash",
                        "input": {"command": command},
                    }
                ],
                "usage": {
                    "input_tokens": 1200,
                    "output_tokens": 40,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
        }
    )
    with note.open("a", encoding="utf-8") as fh:
        fh.write(f"- step {iteration} at {stamp}\n")
    from unattended.supervisor.git.facts import git_process

    git = git_process(Path.cwd(), "add", str(note), check=False)
    if git.returncode == 0:
        git = git_process(Path.cwd(), "commit", "-q", "-m", f"demo: step {iteration}", check=False)
    emit(
        {
            "type": "user",
            "session_id": session,
            "parent_tool_use_id": None,
            "message": {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_id,
                        "is_error": git.returncode != 0,
                        "content": (git.stdout + git.stderr).decode("utf-8", "replace").strip()
                        or "committed",
                    }
                ],
            },
        }
    )
    time.sleep(PAUSE_S)
    if git.returncode != 0:
        text = f"The commit failed: {(git.stderr or git.stdout).strip()[:200]}"
    elif iteration >= steps:
        text = f"Committed step {iteration}; the task is complete.\nUNATTENDED_DONE"
    else:
        text = f"Committed step {iteration} of {steps}; more to do."
    emit(
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "duration_ms": int((time.monotonic() - started) * 1000),
            "num_turns": 2,
            "result": text,
            "session_id": session,
            "total_cost_usd": 0.0,
            "usage": {
                "input_tokens": 2400,
                "output_tokens": 80,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
            "modelUsage": {
                MODEL: {
                    "inputTokens": 2400,
                    "outputTokens": 80,
                    "contextWindow": 200000,
                    "costUSD": 0.0,
                }
            },
            "permission_denials": [],
        }
    )
    return 0 if git.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
