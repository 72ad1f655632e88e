"""The CLI may run PostToolUse a moment before it writes the assistant message that called the
tool: the hook waits for that message (briefly) so its reading is of the current request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def assistant(message_id: str, tool_id: str, tokens: int) -> str:
    return json.dumps(
        {
            "type": "assistant",
            "isSidechain": False,
            "message": {
                "id": message_id,
                "model": "claude-test",
                "content": [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": {}}],
                "usage": {"input_tokens": tokens, "output_tokens": 5},
            },
        }
    )


def run_hook(tmp_path: Path, transcript: Path, tool_id: str) -> subprocess.CompletedProcess[str]:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    stdin = json.dumps(
        {
            "session_id": "s",
            "transcript_path": str(transcript),
            "cwd": str(tmp_path),
            "hook_event_name": "PostToolUse",
            "tool_name": "Bash",
            "tool_use_id": tool_id,
        }
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "UNATTENDED_CONTEXT_WINDOW": "10000",
        "UNATTENDED_STATE_DIR": str(state),
    }
    return subprocess.run(
        [sys.executable, "-m", "unattended", "hook", "context-meter"],
        input=stdin, env=env, capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip


def test_hook_waits_for_the_tool_calls_message(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    transcript.write_text(assistant("msg_1", "toolu_1", 5_000) + "\n")

    def late_write() -> None:
        time.sleep(0.15)
        with transcript.open("a") as fh:
            fh.write(assistant("msg_2", "toolu_2", 9_000) + "\n")

    writer = threading.Thread(target=late_write)
    writer.start()
    done = run_hook(tmp_path, transcript, "toolu_2")
    writer.join()
    assert done.returncode == 0
    assert "Stop now" in done.stdout  # 90 %: the late message was read, not the 50 % one


def test_hook_gives_up_waiting_and_measures_what_is_there(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    transcript.write_text(assistant("msg_1", "toolu_1", 7_500) + "\n")
    started = time.monotonic()
    done = run_hook(tmp_path, transcript, "toolu_never")
    assert done.returncode == 0
    assert "Finish the step you are on" in done.stdout
    assert time.monotonic() - started < 5


def test_on_the_first_tool_call_the_hook_waits_for_the_transcript_to_exist(
    tmp_path: Path,
) -> None:
    """Seen with CLI 2.1.197: the first PostToolUse can run before the transcript is written."""
    transcript = tmp_path / "t.jsonl"

    def late_create() -> None:
        time.sleep(0.15)
        transcript.write_text(assistant("msg_1", "toolu_1", 9_000) + "\n")

    writer = threading.Thread(target=late_create)
    writer.start()
    done = run_hook(tmp_path, transcript, "toolu_1")
    writer.join()
    assert done.returncode == 0
    assert "Stop now" in done.stdout
    meter = json.loads((tmp_path / "state" / "context-meter.json").read_text())
    assert (meter["readings"], meter["failures"]) == (1, 0)
