"""The fake `claude` stays realistic: its output has the shapes of claude-cli-facts.md.

Every test runs the fake as a real child process through the fixture's `claude` wrapper.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.claude_fixture import FakeClaude

STREAM = ["--output-format", "stream-json", "--verbose"]
BYPASS = ["--permission-mode", "bypassPermissions"]
INIT_KEYS = {
    "type", "subtype", "cwd", "session_id", "tools", "mcp_servers", "model", "permissionMode",
    "slash_commands", "apiKeySource", "claude_code_version", "output_style", "agents", "skills",
    "plugins", "analytics_disabled", "product_feedback_disabled", "uuid", "memory_paths",
    "fast_mode_state",
}  # fmt: skip
RESULT_KEYS = {
    "type", "subtype", "is_error", "api_error_status", "duration_ms", "duration_api_ms",
    "num_turns", "result", "stop_reason", "session_id", "total_cost_usd", "usage", "modelUsage",
    "permission_denials", "terminal_reason", "uuid",
}  # fmt: skip
USAGE_KEYS = {
    "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens",
    "server_tool_use", "service_tier", "cache_creation",
}  # fmt: skip
MODEL_USAGE_KEYS = {
    "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens", "costUSD",
    "contextWindow", "maxOutputTokens",
}  # fmt: skip
SERVER_TAIL = (
    "This is a server-side issue, usually temporary — try again in a moment. "
    "If it persists, check your inference gateway (127.0.0.1:9)."
)


class Ran:
    """A finished fake run: exit code, parsed stdout lines, stderr."""

    def __init__(self, rc: int, stdout: str, stderr: str) -> None:
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]

    def of(self, kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.lines if e["type"] == kind and subtype in (None, e.get("subtype"))]

    @property
    def result(self) -> dict[str, Any]:
        results = self.of("result")
        assert len(results) == 1 and self.lines[-1] is results[0], self.stdout[-2000:]
        return results[0]


@pytest.fixture
def fake(tmp_path: Path) -> FakeClaude:
    """The same object the shared `fake_claude` fixture gives (conftest is not ours)."""
    return FakeClaude(tmp_path)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git_env = _env_for_git(tmp_path)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True, env=git_env)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=path, check=True, env=git_env
    )
    return path


def _env_for_git(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, HOME=str(tmp_path), GIT_CONFIG_NOSYSTEM="1")
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e.x")
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e.x")
    return env


def env_of(fake: FakeClaude, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNATTENDED_", "NOTIFY_"))}
    env.update(fake.env(home=True), IS_SANDBOX="1", GIT_CONFIG_NOSYSTEM="1")
    env.update(extra)
    return env


def run(
    fake: FakeClaude, repo: Path, *args: str, flags: list[str] | None = None, **env: str
) -> Ran:
    argv = [str(fake.bin), "-p", "do the work", *(STREAM if flags is None else flags), *args]
    proc = subprocess.run(
        argv,
        cwd=repo,
        env=env_of(fake, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def start(fake: FakeClaude, repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(fake.bin), "-p", "do the work", *STREAM, *BYPASS, *args],
        cwd=repo,
        env=env_of(fake),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split(") ")[-1].startswith("Z"))


def commits(repo: Path) -> list[str]:
    out = subprocess.run(["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True)
    return out.stdout.split("\n")[:-1]


# ------------------------------------------------------------------ shapes


def test_commit_and_done_has_the_real_shapes(fake: FakeClaude, repo: Path) -> None:
    fake.script([[{"do": "say", "text": "Looking."}, "commit", "done"]])
    ran = run(fake, repo, *BYPASS, UNATTENDED_ITERATION="3", NOTIFY_SOCKET="/x")
    assert ran.rc == 0 and ran.stderr == ""
    init = ran.lines[0]
    assert init["type"] == "system" and init["subtype"] == "init"
    assert set(init) >= INIT_KEYS and init["cwd"] == str(repo)
    assert init["permissionMode"] == "bypassPermissions"
    assert init["claude_code_version"] == "2.1.197" and len(init["tools"]) == 25
    assistants = ran.of("assistant")
    assert all(len(a["message"]["content"]) == 1 for a in assistants)
    assert all(a["message"]["stop_reason"] is None for a in assistants)
    text = assistants[0]
    tool_use = next(a for a in assistants if a["message"]["content"][0]["type"] == "tool_use")
    assert text["message"]["id"] == tool_use["message"]["id"]  # one line per block
    block = tool_use["message"]["content"][0]
    assert block["type"] == "tool_use" and block["name"] == "Bash"
    assert "git commit" in block["input"]["command"]
    user = ran.of("user")[0]
    tool_result = user["message"]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == block["id"]
    assert tool_result["is_error"] is False
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    git_op = user["tool_use_result"]["gitOperation"]["commit"]
    assert git_op == {"sha": head.stdout.strip(), "kind": "committed"}
    assert len(commits(repo)) == 2
    result = ran.result
    assert set(result) >= RESULT_KEYS
    assert result["subtype"] == "success" and result["is_error"] is False
    assert result["api_error_status"] is None and result["stop_reason"] == "end_turn"
    assert result["terminal_reason"] == "completed" and result["num_turns"] == 2
    assert result["result"].splitlines()[-1] == "UNATTENDED_DONE"
    assert set(result["usage"]) >= USAGE_KEYS
    (model_usage,) = result["modelUsage"].values()
    assert set(model_usage) >= MODEL_USAGE_KEYS
    assert result["session_id"] == init["session_id"]
    call = fake.calls()[0]
    assert call["env"]["UNATTENDED_ITERATION"] == "3" and call["notify_socket"] is True
    assert call["cwd"] == str(repo) and call["stdin"] == "devnull"
    assert {"pid", "pgid", "sid", "argv", "fds", "ctty"} <= set(call)


def test_invocations_follow_the_script_and_the_last_repeats(fake: FakeClaude, repo: Path) -> None:
    fake.script([["done"], [{"do": "blocked", "reason": "need a key"}], ["question"]])
    texts = [run(fake, repo).result["result"] for _ in range(4)]
    assert texts[0].endswith("\nUNATTENDED_DONE")
    assert texts[1].splitlines()[-1] == "UNATTENDED_BLOCKED: need a key"
    assert texts[2] == texts[3] and texts[2].endswith("?")
    assert [c["entry"] for c in fake.calls()] == [0, 1, 2, 2]


def test_prose_and_tool_output_markers(fake: FakeClaude, repo: Path) -> None:
    fake.script([["blocker_none"], ["markers_in_tool"], [{"do": "text", "text": "hi"}]])
    prose = run(fake, repo, *BYPASS).result["result"]
    assert "Blocker: none" in prose and "UNATTENDED" not in prose
    ran = run(fake, repo, *BYPASS)
    tool_text = ran.of("user")[0]["message"]["content"][0]["content"]
    assert "UNATTENDED_DONE" in tool_text.splitlines()
    assert "UNATTENDED_BLOCKED: x" in tool_text.splitlines()
    assert "UNATTENDED" not in ran.result["result"]
    assert run(fake, repo).result["result"] == "hi"


def test_usage_figures_and_context_tokens(fake: FakeClaude, repo: Path) -> None:
    usage = {"input_tokens": 1_000_000, "output_tokens": 100_000}
    usage.update(cache_read_input_tokens=5000, cache_creation_input_tokens=7000)
    fake.script([[{"do": "usage", "context_tokens": 150_000, **usage}, "commit", "text"]])
    ran = run(fake, repo, *BYPASS, "--model", "claude-sonnet-4-6")
    result = ran.result
    assert result["total_cost_usd"] == pytest.approx(7.54625)  # the facts' price check
    assert {k: result["usage"][k] for k in usage} == usage
    assert result["modelUsage"]["claude-sonnet-4-6"]["contextWindow"] == 200_000
    for line in ran.of("assistant"):
        u = line["message"]["usage"]
        total = u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"]
        assert total == 150_000 and u["output_tokens"] == 1
    (transcript,) = fake.transcripts()
    entries = [json.loads(x) for x in transcript.read_text().splitlines()]
    assert transcript.stem == result["session_id"]
    assert {e["type"] for e in entries} == {"user", "assistant"}
    assert all(e["sessionId"] == result["session_id"] for e in entries)


# ------------------------------------------------------------------ API trouble


@pytest.mark.parametrize(
    ("status", "text", "error"),
    [
        (429, "API Error: Request rejected (429) · Rate limited", "rate_limit"),
        (500, f"API Error: 500 Internal server error. {SERVER_TAIL}", "server_error"),
        (529, f"API Error: 529 Overloaded. {SERVER_TAIL}", "server_error"),
    ],
)
def test_api_errors(fake: FakeClaude, repo: Path, status: int, text: str, error: str):
    fake.script([[{"do": "api_error", "status": status, "retries": 2}]])
    ran = run(fake, repo, ANTHROPIC_BASE_URL="http://127.0.0.1:9", CLAUDE_CODE_MAX_RETRIES="2")
    assert ran.rc == 1
    retries = ran.of("system", "api_retry")
    assert [r["attempt"] for r in retries] == [1, 2] and retries[0]["max_retries"] == 2
    assert retries[0]["error_status"] == status
    synthetic = ran.of("assistant")[-1]
    assert synthetic["message"]["model"] == "<synthetic>" and synthetic["error"] == error
    result = ran.result
    assert result["subtype"] == "success" and result["is_error"] is True
    assert result["api_error_status"] == status and result["result"] == text


@pytest.mark.parametrize(
    ("kind", "rate_type", "word"),
    [
        ("session", "five_hour", "session"),
        ("weekly", "seven_day", "weekly"),
        ("opus", "seven_day_opus", "Opus"),
        ("usage", "overage", "usage"),
    ],
)
def test_usage_limits(fake: FakeClaude, repo: Path, kind: str, rate_type: str, word: str):
    fake.script([[{"do": "usage_limit", "kind": kind, "resets_at": 1900000000}]])
    ran = run(fake, repo)
    assert ran.rc == 1
    (event,) = ran.of("rate_limit_event")
    info = event["rate_limit_info"]
    assert info == {
        "status": "rejected",
        "resetsAt": 1900000000,
        "rateLimitType": rate_type,
        "isUsingOverage": False,
    }
    result = ran.result
    assert result["is_error"] is True and result["api_error_status"] == 429
    assert result["result"] == f"You've hit your {word} limit · resets Mar 17, 2030, 5:46pm (UTC)"


def test_server_limiting_auth_and_prompt_too_long(fake: FakeClaude, repo: Path) -> None:
    fake.script(
        [
            [{"do": "usage_limit", "kind": "server", "message": "slow down"}],
            ["auth_error"],
            [{"do": "auth_error", "kind": "not_logged_in"}],
            ["prompt_too_long"],
        ]
    )
    results = [run(fake, repo) for _ in range(4)]
    assert [r.rc for r in results] == [1, 1, 1, 1]
    assert not results[0].of("rate_limit_event")
    texts = [r.result["result"] for r in results]
    assert texts == [
        "API Error: Server is temporarily limiting requests (not your usage limit) · slow down",
        "Invalid API key · Fix external API key",
        "Not logged in · Please run /login",
        "Prompt is too long",
    ]
    assert all(r.result["is_error"] for r in results)


def test_rate_limit_event_that_does_not_end_the_run(fake: FakeClaude, repo: Path) -> None:
    step = {"do": "rate_limit", "type": "seven_day", "resets_in": 60, "utilization": 0.91}
    fake.script([[step, "text"]])
    ran = run(fake, repo)
    info = ran.of("rate_limit_event")[0]["rate_limit_info"]
    assert info["status"] == "allowed_warning" and info["utilization"] == 0.91
    assert ran.rc == 0 and ran.result["is_error"] is False


# ------------------------------------------------------------------ permissions and flags


def test_permission_denials(fake: FakeClaude, repo: Path) -> None:
    fake.script([["commit", {"do": "permission_denied", "tool": "WebFetch"}, "text"]])
    ran = run(fake, repo)  # mode default: Bash is denied, as the real CLI does in -p
    assert ran.rc == 0 and len(commits(repo)) == 1
    denials = ran.result["permission_denials"]
    assert [d["tool_name"] for d in denials] == ["Bash", "WebFetch"]
    first = ran.of("user")[0]
    assert first["message"]["content"][0]["is_error"] is True
    assert first["tool_use_result"].startswith("Error: This Bash command contains")
    allowed = run(fake, repo, "--allowedTools", "Bash,Read")
    assert len(commits(repo)) == 2
    assert [d["tool_name"] for d in allowed.result["permission_denials"]] == ["WebFetch"]


def test_cli_refusals_and_other_formats(fake: FakeClaude, repo: Path) -> None:
    no_verbose = run(fake, repo, flags=["--output-format", "stream-json"])
    assert no_verbose.rc == 1 and "requires --verbose" in no_verbose.stderr
    if os.geteuid() == 0:
        env = env_of(fake)
        env.pop("IS_SANDBOX")
        proc = subprocess.run(
            [str(fake.bin), "-p", "x", *STREAM, "--dangerously-skip-permissions"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 1 and proc.stdout == ""
        assert "cannot be used with root/sudo privileges" in proc.stderr
    fake.script([["done"]])
    as_json = run(fake, repo, flags=["--output-format", "json"])
    assert len(as_json.lines) == 1 and as_json.result["result"].endswith("UNATTENDED_DONE")
    as_text = subprocess.run(
        [str(fake.bin), "-p", "x"], cwd=repo, env=env_of(fake), capture_output=True
    )
    assert as_text.stdout.decode().endswith("UNATTENDED_DONE\n")
    version = subprocess.run([str(fake.bin), "--version"], capture_output=True, text=True)
    assert version.stdout == "2.1.197 (Claude Code)\n"


def test_max_turns_and_budget(fake: FakeClaude, repo: Path) -> None:
    fake.script([["commit", "done"]])
    ran = run(fake, repo, *BYPASS, "--max-turns", "1")
    assert ran.rc == 1 and ran.result["subtype"] == "error_max_turns"
    assert ran.result["num_turns"] == 2 and "result" not in ran.result
    fake.script([[{"do": "usage", "cost_usd": 2.5}, "done"]])
    ran = run(fake, repo, "--max-budget-usd", "1")
    assert ran.rc == 1 and ran.result["subtype"] == "error_max_budget_usd"


def test_bad_scenarios_give_one_line(fake: FakeClaude, repo: Path) -> None:
    fake.script([[{"do": "explode"}]])
    ran = subprocess.run(
        [str(fake.bin), "-p", "x", *STREAM], cwd=repo, env=env_of(fake),
        capture_output=True, text=True,
    )  # fmt: skip
    assert ran.returncode == 2 and ran.stderr.count("\n") == 1
    assert "unknown action 'explode'" in ran.stderr and "Traceback" not in ran.stderr
    with pytest.raises(ValueError):
        fake.script([])


def test_post_tool_use_hooks_run_with_real_stdin(fake: FakeClaude, repo: Path) -> None:
    hook = repo.parent / "hook.py"
    hook.write_text(
        "import json, sys\n"
        "data = json.load(sys.stdin)\n"
        "ctx = 'seen ' + data['tool_name'] + ' ' + str(len(open(data['transcript_path']).read()))\n"
        "print(json.dumps({'hookSpecificOutput': {'hookEventName': 'PostToolUse',"
        " 'additionalContext': ctx}}))\n"
    )
    settings = {"hooks": {"PostToolUse": [{"matcher": "*", "hooks": [
        {"type": "command", "command": f"{sys.executable} {hook}"}]}]}}  # fmt: skip
    fake.script([["commit", "done"]])
    run(fake, repo, *BYPASS, "--settings", json.dumps(settings))
    (hook_run,) = fake.hook_runs()
    assert hook_run["returncode"] == 0 and hook_run["additional_context"].startswith("seen Bash")
    stdin = hook_run["stdin"]
    assert stdin["hook_event_name"] == "PostToolUse" and stdin["cwd"] == str(repo)
    assert stdin["tool_response"]["gitOperation"]["commit"]["kind"] == "committed"


# ------------------------------------------------------------------ processes and signals


def test_exit_and_no_result(fake: FakeClaude, repo: Path) -> None:
    fake.script([[{"do": "exit", "code": 3, "stderr": "boom"}], ["no_result"]])
    crashed = run(fake, repo)
    assert crashed.rc == 3 and crashed.stderr == "boom\n" and not crashed.of("result")
    quiet = run(fake, repo)
    assert quiet.rc == 0 and not quiet.of("result") and quiet.lines[0]["subtype"] == "init"


def test_wrapper_keeps_the_pid_and_sigint_is_a_clean_stop(fake: FakeClaude, repo: Path) -> None:
    fake.script([[{"do": "run", "cmd": "echo started > started.txt; sleep 300"}]])
    proc = start(fake, repo)
    wait_for(lambda: (repo / "started.txt").exists())
    call = fake.calls()[0]
    assert call["pid"] == proc.pid
    import psutil

    tool = [p for p in psutil.Process(proc.pid).children(recursive=True) if "sleep" in p.name()]
    assert tool, "the tool's sleep is a descendant of the fake"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    ran = Ran(proc.returncode, out, "")
    assert ran.rc == 1
    result = ran.result
    assert result["subtype"] == "error_during_execution" and result["is_error"] is True
    assert "result" not in result
    tool_result = ran.of("user")[-1]["message"]["content"][0]
    assert tool_result["content"].startswith("The user doesn't want to proceed with this tool use")
    # Its own tool process, not any `sleep 300` on the machine (other suites may run one).
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tool))


def test_sigterm_default_and_ignored(fake: FakeClaude, repo: Path) -> None:
    fake.script([["hang"], ["ignore_sigterm", "ignore_sigint", "hang"]])
    plain = start(fake, repo)
    wait_for(lambda: len(fake.calls()) == 1)
    time.sleep(0.2)
    plain.terminate()
    out, _ = plain.communicate(timeout=20)
    assert plain.returncode == 143 and '"result"' not in out
    stubborn = start(fake, repo)
    try:
        wait_for(lambda: len(fake.calls()) == 2)
        time.sleep(0.5)  # the ignore steps run right after the call record
        stubborn.terminate()
        stubborn.send_signal(signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            stubborn.wait(timeout=1)
    finally:
        stubborn.kill()
        stubborn.communicate(timeout=20)
    assert stubborn.returncode == -signal.SIGKILL


@pytest.mark.parametrize("detach", [False, True])
def test_grandchild_in_its_own_session_outlives_the_fake(
    fake: FakeClaude, repo: Path, detach: bool
) -> None:
    pid_file = repo.parent / "grandchild.pid"
    fake.script([[{"do": "grandchild", "pid_file": str(pid_file), "detach": detach}, "text"]])
    ran = run(fake, repo, *BYPASS)
    pid = int(pid_file.read_text())
    try:
        assert ran.rc == 0 and alive(pid)
        assert os.getsid(pid) != os.getsid(0) and os.getsid(pid) != fake.calls()[0]["sid"]
    finally:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid))


def test_busy_burns_cpu_and_prints_nothing(fake: FakeClaude, repo: Path) -> None:
    fake.script([[{"do": "busy", "seconds": 1}, "text"]])
    proc = start(fake, repo)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close() if proc.stderr else None
    assert proc.returncode == 0 and '"result"' in out
    assert usage.ru_utime + usage.ru_stime >= 0.5  # the tool child's CPU counts for its parent


def test_spew_streams_without_holding_it_in_memory(fake: FakeClaude, repo: Path) -> None:
    fake.script([[{"do": "spew", "mb": 300}, "done"]])
    proc = subprocess.Popen(
        [str(fake.bin), "-p", "x", *STREAM],
        cwd=repo,
        env=env_of(fake),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    import psutil

    watched = psutil.Process(proc.pid)
    total, lines, partial, last, peak = 0, 0, b"", b"", 0
    while chunk := proc.stdout.read(1 << 20):
        with contextlib.suppress(psutil.Error):
            peak = max(peak, watched.memory_info().rss)
        total += len(chunk)
        parts = (partial + chunk).split(b"\n")
        partial = parts.pop()
        lines += len(parts)
        if parts:
            if lines < 5:
                for p in parts:
                    json.loads(p)
            last = parts[-1]
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0 and partial == b""
    assert total >= 300 * 1024 * 1024 and lines > 4000
    assert json.loads(last)["type"] == "result"
    del usage
    # Sampled while it printed (ru_maxrss proved unreliable inside the full suite).
    assert 0 < peak < 100 * 1024 * 1024


# --- what the real CLI does that the accounting depends on (issue 11) -------------------------


def test_2_1_332_resume_is_cumulative_and_reports_the_per_result_share(
    fake: FakeClaude, repo: Path
) -> None:
    """As measured (cli-facts-332 §2): 0.016, 0.032, 0.048 for three identical invocations."""
    fake.script([[{"do": "usage", "cost_usd": 0.016}, "text"]])
    first = run(fake, repo, *BYPASS, FAKE_CLAUDE_VERSION="2.1.332").result
    session = first["session_id"]
    assert next(iter(first)) != "type"  # 2.1.332 moved "type" away from the front
    costs = [first["total_cost_usd"]]
    for _ in range(2):
        again = run(fake, repo, *BYPASS, "--resume", session, FAKE_CLAUDE_VERSION="2.1.332")
        result = again.result
        costs.append(result["total_cost_usd"])
        assert result["usage"]["input_tokens"] == first["usage"]["input_tokens"]  # per call
        (since,) = result["model_usage_since_last_result"].values()
        assert since["costUSD"] == pytest.approx(0.016)
    assert costs == pytest.approx([0.016, 0.032, 0.048])
    (model_usage,) = result["modelUsage"].values()
    assert model_usage["inputTokens"] == 3 * first["usage"]["input_tokens"]
    # 2.1.197 reports each invocation on its own.
    fake.script([[{"do": "usage", "cost_usd": 0.016}, "text"]])
    old = run(fake, repo, *BYPASS, "--resume", session).result
    assert old["total_cost_usd"] == 0.016 and "result_index" not in old


def test_a_background_task_gives_a_second_result(fake: FakeClaude, repo: Path) -> None:
    fake.script([[{"do": "background", "input_tokens": 400, "output_tokens": 40}, "done"]])
    ran = run(fake, repo, *BYPASS)
    first, second = ran.of("result")
    assert "UNATTENDED_DONE" in first["result"] and second["result"].startswith("Stale")
    assert len(ran.of("system", "init")) == 2
    assert second["usage"]["input_tokens"] == 400  # that turn alone
    (cumulative,) = second["modelUsage"].values()
    assert cumulative["inputTokens"] == first["usage"]["input_tokens"] + 400
    assert second["total_cost_usd"] > first["total_cost_usd"]


def test_one_hour_cache_writes_are_priced_at_twice_the_input(fake: FakeClaude, repo: Path) -> None:
    fake.script([[{"do": "usage", "cache_1h": 4000}, "text"]])
    result = run(fake, repo, *BYPASS).result
    split = result["usage"]["cache_creation"]
    assert split == {"ephemeral_1h_input_tokens": 4000, "ephemeral_5m_input_tokens": 0}
    # DEFAULT_USAGE at $5/$25/$0.5, 4000 writes at $10 instead of $6.25.
    assert result["total_cost_usd"] == pytest.approx(
        (1200 * 5 + 350 * 25 + 18000 * 0.5 + 40000) / 1e6
    )


def test_partial_usage_lines_and_subagent_files(fake: FakeClaude, repo: Path) -> None:
    fake.script(
        [
            [
                {"do": "usage", "partial_lines": True},
                {"do": "say", "text": "Looking."},
                "subagent",
                "text",
            ]
        ]
    )
    result = run(fake, repo, *BYPASS).result
    assert set(result["modelUsage"]) == {"claude-opus-4-8[1m]", "claude-haiku-4-5-20251001"}
    (main,) = fake.transcripts()
    lines = [json.loads(x) for x in main.read_text().splitlines()]
    by_id: dict[str, list[int]] = {}
    for line in lines:
        if line["type"] == "assistant":
            by_id.setdefault(line["message"]["id"], []).append(
                line["message"]["usage"]["output_tokens"]
            )
    (blocks,) = [v for v in by_id.values() if len(v) > 1]  # text + tool_use of one message
    assert blocks[0] < blocks[-1]  # earlier lines carry partial counts
    (sub,) = main.with_suffix("").glob("subagents/agent-*.jsonl")
    assert json.loads(sub.read_text())["message"]["model"] == "claude-haiku-4-5-20251001"


def test_auth_error_retries_as_api_retry_events(fake: FakeClaude, repo: Path) -> None:
    fake.script([[{"do": "auth_error", "retries": 2, "retry_delay": 0.01}]])
    ran = run(fake, repo, *BYPASS)
    retries = ran.of("system", "api_retry")
    assert [(r["error_status"], r["error"]) for r in retries] == [
        (401, "authentication_failed")
    ] * 2
    assert isinstance(retries[0]["retry_delay_ms"], float)  # 2.1.197 prints floats
    assert ran.result["result"] == "Invalid API key · Fix external API key"


def test_replay_prints_a_real_capture(fake: FakeClaude, repo: Path) -> None:
    from tests.real_corpus import STREAMS

    path = STREAMS / "fi-logging-api-error.jsonl"
    fake.script([[{"do": "replay", "file": str(path)}]])
    ran = run(fake, repo, *BYPASS)
    assert ran.rc == 1  # its result is an error
    assert ran.stdout.splitlines() == path.read_text().splitlines()
