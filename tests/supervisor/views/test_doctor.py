"""`unattended doctor`: required checks decide the exit code, warnings never do, secrets never
show. Runs the real command with the fake claude on PATH."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.fakes.claude_fixture import FakeClaude

SECRET = "sk-ant-test-SECRET-0123456789"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def good_env(hermetic_env: dict[str, str]) -> dict[str, str]:
    return {**hermetic_env, "ANTHROPIC_API_KEY": SECRET, "IS_SANDBOX": "1"}


def doctor(project: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, str], str]:
    """(exit code, {check name: its line}, whole stdout)."""
    done = run_cli(["doctor", "--project", str(project), *args], env, timeout=240)
    assert done.stderr == "", done.stderr
    assert "Traceback" not in done.stdout
    lines = done.stdout.splitlines()
    by_name = {ln.split()[1]: ln for ln in lines[:-1]}
    return done.returncode, by_name, done.stdout


def test_all_good(project: Path, good_env: dict[str, str], fake_claude: FakeClaude):
    code, checks, out = doctor(project, good_env)
    assert code == 0, out
    assert checks["claude"] == (
        f"ok    claude       2.1.197 (Claude Code) at {fake_claude.bin}, in the tested range "
        "2.1.197 to 2.1.332"
    )
    assert checks["auth"].startswith("ok    auth         ANTHROPIC_API_KEY is set")
    for name in ("config", "git", "branch", "dirty", "permissions", "prompt", "state-dir"):
        assert checks[name].startswith("ok "), checks[name]
    assert checks["permissions"].endswith("permission mode bypassPermissions")
    assert checks["context"].endswith("no reading yet (the meter runs inside workers)")
    assert checks["quota"].endswith("no quota utilization reported (max_quota_pct is off)")
    for name in ("notify", "inhibitor", "service", "disk"):  # present, ok or warn
        assert checks[name].split()[0] in ("ok", "WARN"), checks[name]
    assert out.splitlines()[-1].startswith("ready: all required checks pass (")
    assert SECRET not in out
    data = json.loads(run_cli(["doctor", "--project", str(project), "--json"], good_env).stdout)
    assert data["ok"] is True
    required = {c["name"] for c in data["checks"] if c["required"]}
    assert required == {"config", "claude", "auth", "git", "permissions"}


def test_missing_binary(project: Path, good_env: dict[str, str], tmp_path: Path):
    env = {**good_env, "UNATTENDED_CLAUDE_BIN": str(tmp_path / "nowhere" / "claude")}
    code, checks, out = doctor(project, env)
    assert code == 1
    assert checks["claude"].startswith("FAIL  claude       claude binary not found: ")
    assert "fix: install Claude Code (npm install -g @anthropic-ai/claude-code)" in out
    assert out.splitlines()[-1] == "1 required check(s) failed (claude): a run would not work"


def test_broken_binary(project: Path, good_env: dict[str, str], tmp_path: Path):
    broken = tmp_path / "broken-claude"
    broken.write_text("#!/bin/sh\necho 'node: cannot find module' >&2\nexit 3\n")
    broken.chmod(0o755)
    code, checks, _ = doctor(project, {**good_env, "UNATTENDED_CLAUDE_BIN": str(broken)})
    assert code == 1
    assert checks["claude"].endswith(
        "--version` exited 3: node: cannot find module; fix: "
        "reinstall Claude Code, or point claude_bin at it"
    )


def test_protected_branch_and_dirty_tree_only_warn(project: Path, good_env: dict[str, str]):
    git(project, "switch", "-q", "-c", "main", env=good_env)
    (project / "README.md").write_text("changed\n")
    code, checks, out = doctor(project, good_env)
    assert code == 0, out
    assert checks["branch"] == (
        "WARN  branch       refusing to work on protected branch main; fix: git switch -c "
        "night-work (or pass --branch NAME to start)"
    )
    assert checks["dirty"].startswith(
        "WARN  dirty        the work tree has 1 uncommitted "
        "change(s) (README.md); fix: commit or stash"
    )
    assert out.splitlines()[-1].startswith("ready: all required checks pass (")


def test_not_a_git_repo(tmp_path: Path, good_env: dict[str, str]):
    plain = tmp_path / "plain"
    plain.mkdir()
    code, checks, _ = doctor(plain, good_env)
    assert code == 1
    assert checks["git"].startswith("FAIL  git          not a git work tree; fix: run `git init`")


def test_authentication_sources_never_print_secrets(project: Path, hermetic_env: dict[str, str]):
    env = {k: v for k, v in hermetic_env.items() if k != "ANTHROPIC_API_KEY"}
    env["IS_SANDBOX"] = "1"
    code, checks, _ = doctor(project, env)
    assert code == 1
    assert checks["auth"].startswith("FAIL  auth         no Claude credentials found")
    home = Path(env["HOME"])
    (home / ".claude.json").write_text(json.dumps({"oauthAccount": {"emailAddress": SECRET}}))
    code, checks, out = doctor(project, env)
    assert code == 0
    assert checks["auth"] == f"ok    auth         logged in (oauthAccount in {home}/.claude.json)"
    (home / ".claude").mkdir()
    (home / ".claude" / ".credentials.json").write_text(json.dumps({"token": SECRET}))
    code, checks, out2 = doctor(project, env)
    assert checks["auth"].endswith(f"logged in ({home}/.claude/.credentials.json present)")
    assert SECRET not in out + out2
    code, checks, out = doctor(project, {**env, "CLAUDE_CODE_OAUTH_TOKEN": SECRET})
    assert checks["auth"].endswith("CLAUDE_CODE_OAUTH_TOKEN is set in the environment")
    assert SECRET not in out


@pytest.mark.skipif(not IS_ROOT, reason="the bypass-mode refusal applies to root only")
def test_root_needs_sandbox_or_allowed_tools(project: Path, hermetic_env: dict[str, str]):
    env = {**hermetic_env, "ANTHROPIC_API_KEY": "test"}
    code, checks, _ = doctor(project, env)
    assert code == 1
    assert checks["permissions"].startswith(
        "FAIL  permissions  running as root, claude refuses bypassPermissions; fix: set "
        "allowed_tools"
    )
    (project / "unattended.toml").write_text('# tools for root\nallowed_tools = "Bash"\n')
    code, checks, _ = doctor(project, env)
    assert code == 0
    assert checks["permissions"].endswith("permission mode default")


def test_bad_config_fails(project: Path, good_env: dict[str, str]):
    (project / "unattended.toml").write_text("hours = 8\nwrokers = 2\n")
    code, checks, _ = doctor(project, good_env)
    assert code == 1
    assert checks["config"].startswith("FAIL  config ")
    assert "unknown setting(s): wrokers" in checks["config"]


def test_context_meter_and_quota(project: Path, good_env: dict[str, str]):
    state_dir = project / ".unattended"
    state_dir.mkdir()
    meter = {
        "schema_version": 1,
        "readings": 12,
        "failures": 1,
        "last_error": "transcript not found",
        "last_reading": {
            "tokens": 124000,
            "percent": 62.0,
            "band": "normal",
            "window": 200000,
            "session_id": "s1",
            "time": "2026-11-23T03:00:00Z",
        },
    }
    (state_dir / "context-meter.json").write_text(json.dumps(meter))
    (project / "unattended.toml").write_text("max_quota_pct = 80\n")
    code, checks, _ = doctor(project, good_env)
    assert code == 0
    assert checks["context"] == (
        "ok    context      last reading 62.0 % (normal), 124,000 tokens, at "
        "2026-11-23T03:00:00Z; 1 failure(s), last: transcript not found"
    )
    assert checks["quota"].startswith(
        "WARN  quota        max_quota_pct (80) cannot act yet: the CLI has not reported quota"
    )
    (state_dir / "context-meter.json").write_text(
        json.dumps(
            {"schema_version": 1, "readings": 0, "failures": 3, "last_error": "bad transcript line"}
        )
    )
    code, checks, _ = doctor(project, good_env)
    assert code == 0
    assert checks["context"].startswith(
        "WARN  context      no reading, 3 failure(s): bad transcript line; fix:"
    )


def test_live_spawn(project: Path, good_env: dict[str, str], fake_claude: FakeClaude):
    fake_claude.script([["done"]])
    code, checks, out = doctor(project, good_env, "--live")
    assert code == 0, out
    assert checks["live"].startswith("ok    live         the worker answered in ")
    call = fake_claude.calls()[-1]
    argv = call["argv"]
    assert call["prompt"].startswith("Reply with the single word OK.")
    assert call["stdin"] == "file" and not any("Reply with" in a for a in argv)
    assert "--output-format" in argv and "stream-json" in argv
    assert call["cwd"] == str(project)

    fake_claude.script([[{"do": "auth_error", "kind": "not_logged_in"}]])
    code, checks, out = doctor(project, good_env, "--live")
    assert code == 1
    assert checks["live"].startswith("FAIL  live         the worker failed: Not logged in")
    assert out.splitlines()[-1] == "1 required check(s) failed (live): a run would not work"


def test_units_from_the_old_layout_are_named_with_the_fix(
    project: Path, good_env: dict[str, str]
) -> None:
    code, checks, _ = doctor(project, good_env)
    assert checks["units"] == "ok    units        no service unit from an older layout"
    unit_dir = Path(good_env["XDG_CONFIG_HOME"]) / "systemd" / "user"
    unit_dir.mkdir(parents=True)
    old = unit_dir / "unattended@.service"
    old.write_text("[Service]\nExecStart=/usr/bin/python3 -P -m supervisor start --foreground\n")
    agents = Path(good_env["HOME"]) / "Library" / "LaunchAgents"
    agents.mkdir(parents=True)
    plist = agents / "dev.unattended.proj-12345678.plist"
    plist.write_text("<array><string>-m</string><string>platform_adapters.launchd_shim</string>")
    code, checks, _ = doctor(project, good_env)
    assert code == 0  # not required: runs by hand still work
    assert checks["units"].startswith("WARN  units        installed from an older unattended")
    assert str(old) in checks["units"] and str(plist) in checks["units"]
    assert "run `unattended service install` again" in checks["units"]
    # What `service install` writes today is current.
    from unattended.platform_adapters.units import render_launchd_plist, render_systemd_unit

    old.write_text(render_systemd_unit(path_env="/usr/bin"))
    plist.write_bytes(render_launchd_plist(str(project), log_dir="/tmp/logs"))
    assert doctor(project, good_env)[1]["units"].startswith("ok    units")


def test_git_missing_from_path_is_a_fail_line_naming_git(
    project: Path, good_env: dict[str, str], fake_claude: FakeClaude
):
    """Issue 13 §11: it was a GitError traceback."""
    code, checks, out = doctor(project, {**good_env, "PATH": str(fake_claude.bin_dir)})
    assert code == 1, out
    level, _, message = checks["git"].split(None, 2)
    assert level == "FAIL" and message.startswith("git is not installed or not on PATH")
    assert "fix: install git" in checks["git"]
    assert checks["claude"].startswith("ok ")
    assert out.splitlines()[-1] == "1 required check(s) failed (git): a run would not work"


def test_doctor_says_how_to_enable_the_api_context_source(project: Path, hermetic_env):
    env = {**hermetic_env, "IS_SANDBOX": "1"}
    code, checks, _ = doctor(project, env)
    assert "--context-source api" in checks["api-count"]
    assert checks["api-count"].startswith("ok    api-count    off, the meter reads the transcript")
    (project / "unattended.toml").write_text('context_source = "api"\n')
    no_key = {k: v for k, v in env.items() if k != "ANTHROPIC_API_KEY"}
    no_key["CLAUDE_CODE_OAUTH_TOKEN"] = "x"
    code, checks, _ = doctor(project, no_key)
    assert checks["api-count"].startswith("WARN  api-count    on, but no ANTHROPIC")


def test_an_untested_cli_version_is_a_warning(
    project: Path, good_env: dict[str, str], fake_claude: FakeClaude, tmp_path: Path
):
    old = tmp_path / "old-claude"
    old.write_text("#!/bin/sh\necho '2.0.14 (Claude Code)'\n")
    old.chmod(0o755)
    code, checks, _out = doctor(project, {**good_env, "UNATTENDED_CLAUDE_BIN": str(old)})
    assert checks["claude"] == (
        f"WARN  claude       2.0.14 (Claude Code) at {old}, outside the tested range 2.1.197 to "
        "2.1.332; fix: install a tested version (npm install -g @anthropic-ai/claude-code@2.1.332)"
    )
    assert code == 0  # it still runs
