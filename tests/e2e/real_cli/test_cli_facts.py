"""Pin the Claude Code CLI behaviours the supervisor relies on (docs: claude-cli-facts.md).

Why: the product parses the CLI's stream-json, exit codes, limit texts, hook wiring and signal
handling. A newer CLI that changes any of these must fail here, loudly, before it fails a user
at 3 a.m. Every run talks only to the loopback fake and uses a temp HOME.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.real_cli.conftest import (
    CLAUDE_CODE_VERSIONS,
    claude_version,
    parse_stream,
    run_claude,
    spawn_claude,
    tagged_processes,
    wait_gone,
)
from tests.fakes.fake_api import FakeAnthropic, Turn, Usage

STREAM = ["--output-format", "stream-json", "--verbose"]


def _git_subjects(repo: Path) -> list[str]:
    out = subprocess.run(
        ["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def _first_non_hook(events: list[dict]) -> dict:
    """Skip the optional SessionStart hook lines that may precede `system/init`."""
    for event in events:
        if event.get("type") == "system" and str(event.get("subtype", "")).startswith("hook_"):
            continue
        return event
    raise AssertionError("no events at all")


def test_version_is_pinned(claude_bin: Path) -> None:
    out = subprocess.run(
        [str(claude_bin), "--version"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] in CLAUDE_CODE_VERSIONS, out.stdout


def test_stream_json_success_shape(claude_bin, hermetic_env, git_repo, tmp_path) -> None:
    usage = Usage(
        input_tokens=1234,
        output_tokens=56,
        cache_creation_input_tokens=700,
        cache_read_input_tokens=8000,
    )
    with FakeAnthropic([Turn.text("hello from the fake", usage=usage)]) as api:
        env = hermetic_env(tmp_path, api.base_url)
        run = run_claude(claude_bin, ["-p", "say hello", *STREAM], cwd=git_repo, env=env)
        posts = api.message_requests()

    assert run.returncode == 0, run.stderr
    events = run.events
    init = _first_non_hook(events)
    assert (init["type"], init["subtype"]) == ("system", "init")
    version = claude_version(claude_bin)
    assert init["claude_code_version"] == version
    assert init["apiKeySource"] == "ANTHROPIC_API_KEY"
    assert init["analytics_disabled"] is True

    result = run.result
    assert result is not None, events[-1]
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    assert result["api_error_status"] is None
    assert result["result"] == "hello from the fake"
    assert result["session_id"] == init["session_id"]
    assert result["usage"]["input_tokens"] == 1234
    assert result["usage"]["output_tokens"] == 56
    assert result["usage"]["cache_creation_input_tokens"] == 700
    assert result["usage"]["cache_read_input_tokens"] == 8000
    assert isinstance(result["total_cost_usd"], float | int) and result["total_cost_usd"] > 0
    assert result["permission_denials"] == []
    [(model, model_usage)] = result["modelUsage"].items()
    assert model_usage["contextWindow"] > 0, model
    assert model_usage["inputTokens"] == 1234

    assert len(posts) == 1
    post = posts[0]
    assert post.query.get("beta") == ["true"]
    assert post.body["stream"] is True
    assert post.headers["x-api-key"] == "dummy"
    assert post.headers["user-agent"].startswith(f"claude-cli/{version}")
    assert post.headers["x-claude-code-session-id"] == init["session_id"]


def test_allowed_bash_commits_and_done_marker(claude_bin, hermetic_env, git_repo, tmp_path) -> None:
    command = "echo work > work.txt && git add work.txt && git commit -m 'worker commit'"
    turns = [
        Turn.tool_use(
            "Bash",
            {"command": command, "description": "commit the work"},
            usage=Usage(input_tokens=100, output_tokens=10),
        ),
        Turn.text(
            "Committed the work.\nUNATTENDED_DONE",
            usage=Usage(300, 30, cache_creation_input_tokens=5, cache_read_input_tokens=50),
        ),
    ]
    with FakeAnthropic(turns) as api:
        env = hermetic_env(tmp_path, api.base_url)
        args = ["-p", "commit something", *STREAM, "--allowed-tools", "Bash"]
        run = run_claude(claude_bin, args, cwd=git_repo, env=env)
        posts = api.message_requests()

    assert run.returncode == 0, run.stderr
    assert _git_subjects(git_repo) == ["worker commit", "initial commit"]
    result = run.result
    assert result is not None and result["is_error"] is False
    assert "UNATTENDED_DONE" in result["result"].splitlines()
    assert result["permission_denials"] == []
    assert result["num_turns"] == 2
    usage = result["usage"]  # summed over the turns, as budgets assume
    assert (usage["input_tokens"], usage["output_tokens"]) == (400, 40)
    assert (usage["cache_creation_input_tokens"], usage["cache_read_input_tokens"]) == (5, 50)
    tool_results = [e for e in run.events if e["type"] == "user"]
    assert tool_results and tool_results[0]["message"]["content"][0]["is_error"] is False
    # gitOperation is parsed from git's own summary line: `git commit -q` gives none.
    commit = tool_results[0]["tool_use_result"].get("gitOperation", {}).get("commit", {})
    assert commit.get("kind") == "committed", tool_results[0]["tool_use_result"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=git_repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert head.startswith(commit["sha"])
    assert len(posts) == 2


def test_default_mode_denies_bash_but_succeeds(
    claude_bin, hermetic_env, git_repo, tmp_path
) -> None:
    """Why the product warns: without allowed tools, -p silently denies Bash and 'succeeds'."""
    command = "echo work > work.txt && git add work.txt && git commit -m 'worker commit'"
    turns = [Turn.tool_use("Bash", {"command": command, "description": "commit"}), "gave up"]
    with FakeAnthropic(turns) as api:
        env = hermetic_env(tmp_path, api.base_url)
        run = run_claude(claude_bin, ["-p", "commit", *STREAM], cwd=git_repo, env=env)

    assert run.returncode == 0, run.stderr
    assert _git_subjects(git_repo) == ["initial commit"]
    result = run.result
    assert result is not None
    assert (result["subtype"], result["is_error"]) == ("success", False)
    [denial] = result["permission_denials"]
    assert denial["tool_name"] == "Bash"
    assert denial["tool_input"]["command"] == command


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="root only")
def test_bypass_mode_refused_as_root(claude_bin, hermetic_env, git_repo, tmp_path) -> None:
    with FakeAnthropic() as api:
        env = hermetic_env(tmp_path, api.base_url)
        args = ["-p", "hi", *STREAM, "--permission-mode", "bypassPermissions"]
        run = run_claude(claude_bin, args, cwd=git_repo, env=env)
        posts = api.message_requests()

    assert run.returncode == 1
    assert "cannot be used with root/sudo privileges" in run.stderr
    assert posts == []


def test_api_500_without_retries(claude_bin, hermetic_env, git_repo, tmp_path) -> None:
    with FakeAnthropic([Turn.error(500, "boom")]) as api:
        env = hermetic_env(tmp_path, api.base_url)
        run = run_claude(claude_bin, ["-p", "hi", *STREAM], cwd=git_repo, env=env)
        posts = api.message_requests()

    assert run.returncode == 1
    result = run.result
    assert result is not None, run.stdout[-500:]
    assert result["subtype"] == "success"  # pitfall: API errors are "success" + is_error
    assert result["is_error"] is True
    assert result["api_error_status"] == 500
    assert result["result"].startswith("API Error: 500")
    assert len(posts) == 1  # CLAUDE_CODE_MAX_RETRIES=0 is honoured


def test_oauth_session_limit(claude_bin, hermetic_env, git_repo, tmp_path) -> None:
    resets_at = int(time.time()) + 3 * 3600
    headers = {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-reset": str(resets_at),
    }
    with FakeAnthropic([Turn.error(429, "limit", headers=headers)]) as api:
        env = hermetic_env(tmp_path, api.base_url, oauth=True)
        assert "ANTHROPIC_API_KEY" not in env
        run = run_claude(claude_bin, ["-p", "hi", *STREAM], cwd=git_repo, env=env)
        posts = api.message_requests()

    assert run.returncode == 1
    limit_events = [e for e in run.events if e["type"] == "rate_limit_event"]
    assert limit_events, run.stdout[-1000:]
    info = limit_events[-1]["rate_limit_info"]
    assert info["status"] == "rejected"
    assert info["resetsAt"] == resets_at
    assert info["rateLimitType"] == "five_hour"
    result = run.result
    assert result is not None and result["is_error"] is True
    # 2.1.197 says "session limit", 2.1.332 "5-hour limit": both read as the five_hour window.
    assert result["result"].startswith(
        ("You've hit your session limit", "You've hit your 5-hour limit")
    ), result["result"]
    from unattended.safety.api_errors import classify_text

    trouble = classify_text(result["result"], time.time())
    assert trouble is not None and trouble.kind == "usage_limit"
    assert trouble.limit_type == "five_hour"
    assert len(posts) == 1  # a usage limit is never retried
    assert posts[0].headers["authorization"] == "Bearer sk-ant-oat01-dummy"
    assert "x-api-key" not in posts[0].headers


def test_post_tool_use_hook_context_reaches_model(
    claude_bin, hermetic_env, git_repo, tmp_path
) -> None:
    stdin_copy = tmp_path / "hook-stdin.json"
    hook = tmp_path / "hook.sh"
    answer = {
        "hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": "MARKER_42"}
    }
    hook.write_text(f"#!/bin/sh\ncat > '{stdin_copy}'\nprintf '%s\\n' '{json.dumps(answer)}'\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    settings = {
        "hooks": {
            "PostToolUse": [{"matcher": "*", "hooks": [{"type": "command", "command": str(hook)}]}]
        }
    }

    def react(body: dict) -> Turn:
        seen = "MARKER_42" in json.dumps(body["messages"][-1])
        return Turn.text("saw the marker" if seen else "no marker")

    turns = [Turn.tool_use("Bash", {"command": "echo tool-ran", "description": "echo"}), react]
    with FakeAnthropic(turns) as api:
        env = hermetic_env(tmp_path, api.base_url)
        args = ["-p", "go", *STREAM, "--allowed-tools", "Bash", "--settings", json.dumps(settings)]
        run = run_claude(claude_bin, args, cwd=git_repo, env=env)
        posts = api.message_requests()

    assert run.returncode == 0, run.stderr
    assert len(posts) == 2
    assert posts[1].contains("MARKER_42")
    assert run.result is not None and run.result["result"] == "saw the marker"
    hook_input = json.loads(stdin_copy.read_text())
    assert hook_input["hook_event_name"] == "PostToolUse"
    assert hook_input["tool_name"] == "Bash"
    transcript = Path(hook_input["transcript_path"])
    assert transcript.is_relative_to(Path(env["HOME"]))
    assert transcript.name == f"{run.result['session_id']}.jsonl"
    assert transcript.is_file()


def test_sigint_during_bash_is_a_clean_stop(
    claude_bin, hermetic_env, process_tag, git_repo, tmp_path
) -> None:
    # 2.1.332 refuses a standalone `sleep N` command: a copy of sleep under another name.
    command = "cp /bin/sleep ./napper && ./napper 30"
    turns = [Turn.tool_use("Bash", {"command": command, "description": "wait"})]
    with FakeAnthropic(turns) as api:
        env = hermetic_env(tmp_path, api.base_url)
        args = ["-p", "sleep", *STREAM, "--allowed-tools", "Bash"]
        with spawn_claude(claude_bin, args, cwd=git_repo, env=env) as proc:
            sleeper = None
            deadline = time.monotonic() + 30
            while sleeper is None and time.monotonic() < deadline and proc.poll() is None:
                sleepers = tagged_processes(process_tag, name="napper")
                sleeper = sleepers[0] if sleepers else None
                time.sleep(0.05)
            assert sleeper is not None, "the Bash tool never started `napper 30`"
            signalled = time.monotonic()
            os.kill(proc.pid, signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=20)
            stopped_after = time.monotonic() - signalled
        posts = api.message_requests()

    events = parse_stream(stdout)
    # The result says error_during_execution every time, but the exit code races: 1 mostly,
    # 0 in about a third of runs here (CLI 2.1.197), 0 every time with 2.1.332. We never rely
    # on it: the supervisor knows it stopped the worker (ended_by "stop").
    assert proc.returncode in (0, 1), (stderr, events[-3:])
    assert stopped_after < 10
    assert events[-1]["type"] == "result", events[-1]
    assert events[-1]["subtype"] == "error_during_execution"
    assert events[-1]["is_error"] is True
    assert wait_gone([sleeper]), "the Bash tool's sleep survived SIGINT"
    assert len(posts) == 1  # no further API call after the interrupt


def test_fake_speaks_the_sdk_protocol() -> None:
    """The fake itself, checked with the official SDK: SSE shape, errors, count_tokens, threads."""
    import concurrent.futures

    import anthropic

    turns = [
        Turn.tool_use("Bash", {"command": "ls", "description": "list"}, text="Looking."),
        Turn.error(429, "slow down", headers={"retry-after": "7"}),
    ]
    with FakeAnthropic(turns, final_text="fin", count_tokens=321) as api:
        client = anthropic.Anthropic(base_url=api.base_url, api_key="dummy", max_retries=0)
        ask = {
            "model": "claude-test",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
        }
        with client.messages.stream(**ask) as stream:
            message = stream.get_final_message()
        assert [b.type for b in message.content] == ["text", "tool_use"]
        assert message.content[1].input == {"command": "ls", "description": "list"}
        assert message.stop_reason == "tool_use"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 20)
        assert message.model == "claude-test"

        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(**ask, stream=True)
        assert caught.value.response.headers["retry-after"] == "7"
        assert caught.value.body["error"]["message"] == "slow down"

        assert (
            client.messages.count_tokens(**{k: ask[k] for k in ("model", "messages")}).input_tokens
            == 321
        )

        def final_text(_: int) -> str:
            with client.messages.stream(**ask) as stream:
                return stream.get_final_text()

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert list(pool.map(final_text, range(8))) == ["fin"] * 8
        assert len(api.message_requests()) == 10
        assert api.requests[-1].body["model"] == "claude-test"
