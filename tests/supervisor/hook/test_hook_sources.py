"""The hook with ``--context-source api`` (loopback fake API), and driven by a fake worker
through the generated ``--settings`` file, as the daemon wires it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.fakes.fake_api import FakeAnthropic
from tests.supervisor.hook.test_meter import HOOK, WARN_150K, hook_input, meter, stop_json
from tests.supervisor.hook.transcripts import Transcript
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.supervisor.worker.settings_file import hook_env, write_worker_settings


def _env(hermetic_env: dict[str, str], state_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **hermetic_env,
        "UNATTENDED_STATE_DIR": str(state_dir),
        "UNATTENDED_CONTEXT_WINDOW": "200000",
        "ANTHROPIC_API_KEY": "dummy",
        **extra,
    }


def _transcript(tmp_path: Path) -> Path:
    t = Transcript(tmp_path / "t.jsonl").user("Fix the tests.")
    t.assistant("m1", input_tokens=150_000, blocks=2).tool_result("3 failed")
    return t.write()


def test_api_source_counts_with_the_endpoint(tmp_path: Path, hermetic_env: dict) -> None:
    state_dir = tmp_path / ".unattended"
    with FakeAnthropic(count_tokens=171_000) as api:
        env = _env(hermetic_env, state_dir, ANTHROPIC_BASE_URL=api.base_url)
        proc = subprocess.run(
            [*HOOK, "--context-source", "api"],
            input=hook_input(_transcript(tmp_path)),
            env=env,
            capture_output=True,
            timeout=60,
        )
        counted = [r for r in api.requests if r.path.startswith("/v1/messages/count_tokens")]
    assert proc.returncode == 0
    assert proc.stdout.decode() == stop_json(state_dir, "85.5", "171,000", "200,000")
    assert len(counted) == 1
    body = counted[0].body
    assert body["model"] == "claude-opus-4-8"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in body["messages"][1]["content"]] == ["text", "tool_use"]
    r = meter(state_dir)["last_reading"]
    assert (r["source"], r["tokens"]) == ("api", 171_000)
    assert meter(state_dir)["failures"] == 0


def test_api_source_via_env_never_reports_less_than_the_transcript(tmp_path, hermetic_env):
    state_dir = tmp_path / ".unattended"
    with FakeAnthropic(count_tokens=5) as api:
        env = _env(
            hermetic_env,
            state_dir,
            ANTHROPIC_BASE_URL=api.base_url,
            UNATTENDED_CONTEXT_SOURCE="api",
        )
        proc = subprocess.run(
            HOOK, input=hook_input(_transcript(tmp_path)), env=env, capture_output=True, timeout=60
        )
        assert any(r.path.startswith("/v1/messages/count_tokens") for r in api.requests)
    assert proc.stdout.decode() == WARN_150K
    assert meter(state_dir)["last_reading"]["source"] == "transcript"


def test_api_source_fails_open(tmp_path: Path, hermetic_env: dict) -> None:
    """API unreachable: the transcript reading stands, and the failure is counted."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the hook runs: connection refused
    state_dir = tmp_path / ".unattended"
    env = _env(hermetic_env, state_dir, ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.run(
        [*HOOK, "--context-source=api"],
        input=hook_input(_transcript(tmp_path)),
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout.decode()) == (0, WARN_150K)
    m = meter(state_dir)
    assert (m["readings"], m["failures"]) == (1, 1)
    assert m["last_error"].startswith("api: CountTokensError: connection failed: ")


def test_worker_settings_file(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    command = [sys.executable, "-m", "unattended", "hook", "context-meter", "it's spaced"]
    path = write_worker_settings(paths, command)
    assert path == tmp_path / ".unattended" / "worker-settings.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / ".unattended").stat().st_mode & 0o777 == 0o700
    doc = json.loads(path.read_text())
    (entry,) = doc["hooks"]["PostToolUse"]
    assert entry["matcher"] == "*"
    (hook,) = entry["hooks"]
    assert hook["type"] == "command"
    out = subprocess.run(  # the shell splits the command back into the same argv
        ["/bin/sh", "-c", hook["command"].replace(sys.executable, "printf '%s\\n'", 1)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines() == command[1:]
    assert list(doc) == ["hooks"]
    assert not list(paths.root.glob(".*.tmp"))


def test_hook_env() -> None:
    s = Settings(context_warn_pct=60, context_stop_pct=80.5, context_source="api")
    assert hook_env(s, 1_000_000) == {
        "UNATTENDED_CONTEXT_WINDOW": "1000000",
        "UNATTENDED_CONTEXT_WARN_PCT": "60",
        "UNATTENDED_CONTEXT_STOP_PCT": "80.5",
        "UNATTENDED_CONTEXT_SOURCE": "api",
    }
    env = hook_env(Settings(), 200_000, RunPaths(Path("/p")))
    assert env["UNATTENDED_STATE_DIR"] == "/p/.unattended"


def test_fake_worker_runs_the_hook_through_the_settings_file(
    tmp_path: Path, hermetic_env: dict, fake_claude, project: Path
) -> None:
    """The wiring end to end: settings file → the worker's PostToolUse hook → our hook, with the
    environment the daemon gives; context grows from normal to warn to stop."""
    fake_claude.script(
        [
            [
                {"do": "usage", "context_tokens": 40_000},
                {"do": "run", "cmd": "true"},
                {"do": "usage", "context_tokens": 150_000},
                {"do": "run", "cmd": "true"},
                {"do": "usage", "context_tokens": 180_000},
                {"do": "run", "cmd": "true"},
                "done",
            ]
        ]
    )
    paths = RunPaths(project)
    settings_file = write_worker_settings(paths, HOOK)
    env = {**hermetic_env, **hook_env(Settings(), 200_000, paths), "IS_SANDBOX": "1"}
    env["UNATTENDED_PROJECT"] = str(project)
    proc = subprocess.run(
        ["claude", "-p", "go", "--output-format", "stream-json", "--verbose"]
        + ["--permission-mode", "bypassPermissions", "--settings", str(settings_file)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    runs = fake_claude.hook_runs()
    assert [r["returncode"] for r in runs] == [0, 0, 0]
    contexts = [r["additional_context"] for r in runs]
    assert contexts[0] is None
    assert "Finish the step you are on" in contexts[1]
    assert f"{paths.root}/handoff.md" in contexts[2]
    m = meter(paths.root)
    assert (m["readings"], m["failures"]) == (3, 0)
    assert m["last_reading"]["band"] == "stop"
    assert m["last_reading"]["session_id"] == runs[0]["stdin"]["session_id"]


def test_hook_command_ignores_the_workers_directory(tmp_path: Path, hermetic_env: dict) -> None:
    """A project with its own json.py and supervisor/ must not shadow the hook's modules."""
    from unattended.supervisor.worker.settings_file import hook_command

    project = tmp_path / "proj"
    (project / "supervisor").mkdir(parents=True)
    (project / "json.py").write_text("raise SystemExit('shadowed json imported')\n")
    (project / "supervisor" / "__init__.py").write_text("raise SystemExit('shadowed pkg')\n")
    state_dir = tmp_path / ".unattended"
    env = _env(hermetic_env, state_dir)
    del env["PYTHONPATH"]
    command = hook_command(Settings())
    assert command[1:3] == ["-I", "-S"]
    proc = subprocess.run(
        command, input=hook_input(_transcript(tmp_path)), env=env, cwd=project,
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout.decode(), proc.stderr) == (0, WARN_150K, b"")
    # Without the daemon's window the table is imported from next to the hook (no site).
    del env["UNATTENDED_CONTEXT_WINDOW"]
    t = Transcript(tmp_path / "big.jsonl").user()
    t.assistant("m1", input_tokens=150_000, model="claude-opus-4-8[1m]")
    proc = subprocess.run(
        command, input=hook_input(t.write()), env=env, cwd=project, capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert meter(state_dir)["last_reading"]["window"] == 1_000_000
    assert meter(state_dir)["failures"] == 0


def test_hook_command_for_the_api_source(tmp_path: Path, hermetic_env: dict) -> None:
    from unattended.supervisor.worker.settings_file import hook_command

    command = hook_command(Settings(context_source="api"))
    assert command[1:3] == ["-I", "-S"] and command[-2:] == ["--context-source", "api"]
    state_dir = tmp_path / ".unattended"
    with FakeAnthropic(count_tokens=180_000) as api:
        env = _env(hermetic_env, state_dir, ANTHROPIC_BASE_URL=api.base_url)
        proc = subprocess.run(
            command, input=hook_input(_transcript(tmp_path)), env=env, capture_output=True,
            timeout=60, cwd=tmp_path,
        )  # fmt: skip
    assert proc.returncode == 0
    assert proc.stdout.decode() == stop_json(state_dir, "90.0", "180,000", "200,000")
