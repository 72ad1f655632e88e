"""The context-meter hook, run as Claude Code runs it: a real process fed JSON on stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.supervisor.hook.transcripts import SESSION, Transcript

HOOK = [sys.executable, "-m", "unattended", "hook", "context-meter"]

WARN_150K = (
    '{"hookSpecificOutput":{"hookEventName":"PostToolUse","additionalContext":"unattended '
    "context meter: your context window is 75.0% full (150,000 of 200,000 tokens). Finish the "
    "step you are on and commit it; do not start another large step. At 85% you will be asked "
    'to hand off to a fresh worker."}}\n'
)


def stop_json(state_dir: Path, pct: str, tokens: str, window: str) -> str:
    text = (
        f"unattended context meter: your context window is {pct}% full ({tokens} of {window} "
        f"tokens). Stop now: write handoff notes for the next worker to {state_dir}/handoff.md "
        "(what is done, what is left, what you were in the middle of, how to check it), commit "
        "your work with git, and end the session without starting anything new."
    )
    doc = {"hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": text}}
    return json.dumps(doc, separators=(",", ":")) + "\n"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "project" / ".unattended"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def env(hermetic_env: dict[str, str], state_dir: Path) -> dict[str, str]:
    return {
        **hermetic_env,
        "UNATTENDED_STATE_DIR": str(state_dir),
        "UNATTENDED_CONTEXT_WINDOW": "200000",
        "UNATTENDED_CONTEXT_WARN_PCT": "70",
        "UNATTENDED_CONTEXT_STOP_PCT": "85",
        "UNATTENDED_ITERATION": "3",
    }


def hook_input(transcript: Path, session: str = SESSION) -> bytes:
    return json.dumps(
        {
            "session_id": session,
            "transcript_path": str(transcript),
            "cwd": "/work/project",
            "prompt_id": "p1",
            "permission_mode": "bypassPermissions",
            "effort": {"level": "high"},
            "hook_event_name": "PostToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "pytest -q"},
            "tool_use_id": "toolu_1",
            "tool_response": {"stdout": "ok", "stderr": "", "interrupted": False},
            "duration_ms": 12,
        }
    ).encode()


def run(stdin: bytes, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*HOOK, *args], input=stdin, env=env, capture_output=True, timeout=60)


def meter(state_dir: Path) -> dict:
    return json.loads((state_dir / "context-meter.json").read_text())


def test_warn_band_prints_the_exact_json(tmp_path: Path, env: dict, state_dir: Path) -> None:
    t = Transcript(tmp_path / "t.jsonl").user()
    t.assistant("msg_1", input_tokens=5, cache_creation=1_000, cache_read=20_000, blocks=2)
    t.tool_result("ok").assistant(
        "msg_2", input_tokens=1_000, cache_creation=9_000, cache_read=140_000, blocks=3
    )
    proc = run(hook_input(t.write()), env)
    assert proc.returncode == 0
    assert proc.stdout.decode() == WARN_150K
    assert proc.stderr == b""
    m = meter(state_dir)
    assert (m["readings"], m["failures"], m["last_error"]) == (1, 0, None)
    r = m["last_reading"]
    assert (r["tokens"], r["percent"], r["band"], r["window"]) == (150_000, 75.0, "warn", 200_000)
    assert (r["session_id"], r["iteration"], r["model"]) == (SESSION, "3", "claude-opus-4-8")
    assert (m["band"], m["pct"]) == ("warn", 75.0)  # what `status` shows
    assert oct((state_dir / "context-meter.json").stat().st_mode & 0o777) == "0o600"


def test_stop_band_asks_for_handoff(tmp_path: Path, env: dict, state_dir: Path) -> None:
    t = Transcript(tmp_path / "t.jsonl").user()
    t.assistant("msg_1", input_tokens=70_000, cache_read=100_000, blocks=2)
    proc = run(hook_input(t.write()), env)
    assert proc.returncode == 0
    assert proc.stdout.decode() == stop_json(state_dir, "85.0", "170,000", "200,000")
    assert meter(state_dir)["last_reading"]["band"] == "stop"


@pytest.mark.parametrize(
    ("tokens", "band"),
    [(139_999, "normal"), (140_000, "warn"), (169_999, "warn"), (170_000, "stop")],
)
def test_band_boundaries(tmp_path: Path, env: dict, state_dir: Path, tokens: int, band: str):
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m", input_tokens=tokens)
    proc = run(hook_input(t.write()), env)
    assert proc.returncode == 0
    assert meter(state_dir)["last_reading"]["band"] == band
    assert (proc.stdout == b"") == (band == "normal")


def test_normal_band_prints_nothing(tmp_path: Path, env: dict, state_dir: Path) -> None:
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m", cache_read=50_000, blocks=2)
    proc = run(hook_input(t.write()), env)
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert meter(state_dir)["last_reading"]["tokens"] == 50_010


def test_sidechain_lines_are_ignored(tmp_path: Path, env: dict, state_dir: Path) -> None:
    """A subagent's big context after the main message must not count as the worker's."""
    t = Transcript(tmp_path / "t.jsonl").user()
    t.assistant("main_1", input_tokens=20_000, blocks=2)
    t.user("subagent task", sidechain=True)
    t.assistant("side_1", input_tokens=190_000, sidechain=True, model="claude-haiku-4-5")
    t.assistant("side_2", input_tokens=195_000, sidechain=True, blocks=2)
    proc = run(hook_input(t.write()), env)
    assert (proc.returncode, proc.stdout) == (0, b"")
    r = meter(state_dir)["last_reading"]
    assert (r["tokens"], r["band"], r["model"]) == (20_000, "normal", "claude-opus-4-8")


def test_lines_before_the_last_compaction_are_ignored(tmp_path, env, state_dir) -> None:
    t = Transcript(tmp_path / "t.jsonl").user()
    t.assistant("old_1", input_tokens=180_000, blocks=2)
    t.compact_boundary().summary().assistant("new_1", input_tokens=12_000, blocks=2)
    proc = run(hook_input(t.write()), env)
    assert (proc.returncode, proc.stdout) == (0, b"")
    r = meter(state_dir)["last_reading"]
    assert (r["tokens"], r["band"], r["compacted"]) == (12_000, "normal", False)


def test_compaction_with_no_message_since_reads_empty(tmp_path, env, state_dir) -> None:
    t = Transcript(tmp_path / "t.jsonl").user().assistant("old", input_tokens=180_000)
    t.compact_boundary().summary()
    proc = run(hook_input(t.write()), env)
    assert (proc.returncode, proc.stdout) == (0, b"")
    m = meter(state_dir)
    assert (m["readings"], m["failures"]) == (1, 0)
    assert (m["last_reading"]["tokens"], m["last_reading"]["compacted"]) == (0, True)


def test_a_tool_result_mentioning_compact_boundary_is_not_a_boundary(tmp_path, env, state_dir):
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=150_000, blocks=2)
    t.tool_result('grep output: {"type":"system","subtype":"compact_boundary"} and "assistant"')
    proc = run(hook_input(t.write()), env)
    assert proc.stdout.decode() == WARN_150K


def test_synthetic_error_messages_and_torn_last_line_are_skipped(tmp_path, env, state_dir):
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=150_000)
    t.synthetic_error().raw('{"type":"assistant","message":{"id":"m9","usage":{"input_tok')
    proc = run(hook_input(t.write()), env)
    assert proc.stdout.decode() == WARN_150K


def test_tail_grows_past_a_huge_tool_result(tmp_path: Path, env: dict, state_dir: Path) -> None:
    """The newest assistant line is 3 MB from the end: the tail read must grow to reach it."""
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=150_000, blocks=2)
    t.tool_result("x" * 3_000_000)
    proc = run(hook_input(t.write()), env)
    assert proc.stdout.decode() == WARN_150K


@pytest.mark.parametrize(
    ("stdin", "error"),
    [
        (b"", "hook stdin is empty or not JSON"),
        (b"\x00\xffgarbage{", "hook stdin is empty or not JSON"),
        (b"[1, 2]", "hook input is not a JSON object"),
        (b'{"session_id": "s"}', "hook input has no transcript_path"),
    ],
)
def test_garbage_input_fails_open_and_is_counted(env, state_dir, stdin: bytes, error: str):
    proc = run(stdin, env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"", b"")
    m = meter(state_dir)
    assert (m["readings"], m["failures"], m["last_error"]) == (0, 1, error)
    assert m["last_error_at"].endswith("Z")


def test_missing_transcript_and_failures_accumulate(tmp_path: Path, env, state_dir) -> None:
    for _ in range(3):
        proc = run(hook_input(tmp_path / "nope.jsonl"), env)
        assert (proc.returncode, proc.stdout) == (0, b"")
    m = meter(state_dir)
    assert m["failures"] == 3
    assert m["last_error"].startswith(f"cannot read the transcript {tmp_path / 'nope.jsonl'}")
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=10)
    run(hook_input(t.write()), env)
    m = meter(state_dir)
    assert (m["readings"], m["failures"]) == (1, 3)  # the last error stays visible


def test_transcript_without_assistant_message_is_a_failure(tmp_path, env, state_dir) -> None:
    t = Transcript(tmp_path / "t.jsonl").user()
    proc = run(hook_input(t.write()), env)
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert "no main-chain assistant message" in meter(state_dir)["last_error"]


def test_corrupt_meter_file_is_replaced(tmp_path: Path, env: dict, state_dir: Path) -> None:
    (state_dir / "context-meter.json").write_text("{not json")
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=10)
    assert run(hook_input(t.write()), env).returncode == 0
    assert meter(state_dir)["readings"] == 1


def test_window_from_the_model_when_env_lacks_it(tmp_path, env, state_dir) -> None:
    del env["UNATTENDED_CONTEXT_WINDOW"]
    t = Transcript(tmp_path / "t.jsonl").user()
    t.assistant("m1", input_tokens=150_000, model="claude-opus-4-8[1m]")
    proc = run(hook_input(t.write()), env)
    assert proc.stdout == b""
    assert meter(state_dir)["last_reading"]["window"] == 1_000_000
    t = Transcript(tmp_path / "t.jsonl").user()
    t.assistant("m1", input_tokens=150_000, model="claude-haiku-4-5-20251001")
    assert run(hook_input(t.write()), env).stdout.decode() == WARN_150K


def test_thresholds_come_from_the_environment(tmp_path, env, state_dir) -> None:
    env.update(UNATTENDED_CONTEXT_WARN_PCT="50", UNATTENDED_CONTEXT_STOP_PCT="60")
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=121_000)
    proc = run(hook_input(t.write()), env)
    assert proc.stdout.decode() == stop_json(state_dir, "60.5", "121,000", "200,000")


def test_state_dir_falls_back_to_the_project(tmp_path: Path, env: dict) -> None:
    del env["UNATTENDED_STATE_DIR"]
    project = tmp_path / "other"
    env["UNATTENDED_PROJECT"] = str(project)
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=10)
    assert run(hook_input(t.write()), env).returncode == 0
    assert json.loads((project / ".unattended/context-meter.json").read_text())["readings"] == 1


def test_concurrent_hooks_lose_no_count(tmp_path: Path, env: dict, state_dir: Path) -> None:
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=10)
    path = t.write()
    procs = [
        subprocess.Popen(HOOK, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        for _ in range(12)
    ]
    for i, p in enumerate(procs):
        p.communicate(hook_input(path) if i % 3 else b"junk", timeout=60)
    assert all(p.returncode == 0 for p in procs)
    m = meter(state_dir)
    assert (m["readings"], m["failures"]) == (8, 4)


def test_hook_imports_nothing_heavy(tmp_path: Path, env: dict) -> None:
    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=150_000)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *HOOK[1:]],
        input=hook_input(t.write()),
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.stdout.decode() == WARN_150K
    modules = {line.split("|")[-1].strip() for line in proc.stderr.decode().splitlines()}
    assert "unattended.supervisor.hook.meter" in modules
    heavy = {m for m in modules if m.split(".")[0] in {"pydantic", "typer", "anthropic", "click"}}
    assert heavy == set()


def test_env_names_match_the_contract() -> None:
    import unattended.contracts.hook as contract
    import unattended.supervisor.hook.meter as fast

    names = ("ENV_CONTEXT_WINDOW", "ENV_WARN_PCT", "ENV_STOP_PCT", "ENV_STATE_DIR")
    names += ("ENV_CONTEXT_SOURCE", "ENV_DEADLINE", "ENV_DEADLINE_WARN_S")
    for name in names:
        assert getattr(fast, name) == getattr(contract, name)


def test_script_form_imports_neither_json_nor_re(tmp_path: Path, env: dict) -> None:
    from unattended.contracts.settings import Settings
    from unattended.supervisor.worker.settings_file import hook_command

    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=150_000)
    command = hook_command(Settings())
    proc = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        input=hook_input(t.write()),
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.stdout.decode() == WARN_150K
    modules = {line.split("|")[-1].strip() for line in proc.stderr.decode().splitlines()}
    assert "_json" in modules or "json" not in modules
    assert not modules & {"json", "re", "pydantic", "typer", "anthropic", "typing"}


def deadline_text(minutes: int, deadline: float) -> str:
    import time

    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline))
    return (
        f"unattended: the run's deadline is {at}, in about {minutes} minutes, and this worker "
        "is ended then. Commit what you have now, leave the work tree clean, and finish "
        "without starting anything new."
    )


def test_near_the_deadline_the_worker_is_told_once_to_commit_and_finish(
    tmp_path: Path, env: dict, state_dir: Path
) -> None:
    import time

    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=1_000)
    deadline = round(time.time()) + 300  # 5 minutes left, inside the default 600 s
    env = {**env, "UNATTENDED_DEADLINE": str(deadline), "UNATTENDED_DEADLINE_WARN_S": "600"}
    first = run(hook_input(t.write()), env)
    assert first.returncode == 0
    said = json.loads(first.stdout)["hookSpecificOutput"]["additionalContext"]
    assert said in (deadline_text(5, deadline), deadline_text(4, deadline))
    assert meter(state_dir)["deadline_warned"] == "3"  # the iteration told
    again = run(hook_input(t.write()), env)
    assert again.returncode == 0 and again.stdout == b""  # once per worker


def test_far_from_the_deadline_the_hook_says_nothing(
    tmp_path: Path, env: dict, state_dir: Path
) -> None:
    import time

    t = Transcript(tmp_path / "t.jsonl").user().assistant("m1", input_tokens=1_000)
    env = {**env, "UNATTENDED_DEADLINE": str(time.time() + 3_600)}
    proc = run(hook_input(t.write()), env)
    assert proc.returncode == 0 and proc.stdout == b""
    assert "deadline_warned" not in meter(state_dir)
