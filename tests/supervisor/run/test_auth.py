"""Credential sources the claude CLI accepts, found by presence only (issue 14 item 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unattended.supervisor.run.auth import auth_source

SECRET = "sk-ant-secret-value-never-read-out"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_nothing_found(home: Path, tmp_path: Path) -> None:
    assert auth_source({"HOME": str(home)}, tmp_path) is None
    assert auth_source({"HOME": str(home), "ANTHROPIC_API_KEY": "  "}, tmp_path) is None
    assert auth_source({"HOME": str(home), "CLAUDE_CODE_USE_BEDROCK": "0"}, tmp_path) is None


@pytest.mark.parametrize(
    "var", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"]
)
def test_key_variables(home: Path, var: str) -> None:
    found = auth_source({"HOME": str(home), var: SECRET})
    assert found == f"{var} is set in the environment"


@pytest.mark.parametrize(
    "var", ["CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY"]
)
def test_cloud_provider_modes(home: Path, var: str) -> None:
    found = auth_source({"HOME": str(home), var: "1"})
    assert found == f"{var} is set (cloud-provider credentials)"


def test_logged_in_cli_files(home: Path, tmp_path: Path) -> None:
    creds = home / ".claude" / ".credentials.json"
    creds.parent.mkdir()
    creds.write_text(json.dumps({"claudeAiOauth": {"accessToken": SECRET}}))
    assert auth_source({"HOME": str(home)}) == f"logged in ({creds} present)"
    config = tmp_path / "cfg"
    config.mkdir()
    (config / ".claude.json").write_text(json.dumps({"oauthAccount": {"email": SECRET}}))
    creds.unlink()
    env = {"HOME": str(home), "CLAUDE_CONFIG_DIR": str(config)}
    assert auth_source(env) == f"logged in (oauthAccount in {config}/.claude.json)"


def test_api_key_helper_in_user_or_project_settings(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    local = project / ".claude" / "settings.local.json"
    local.write_text(json.dumps({"apiKeyHelper": "~/bin/get-key.sh"}))
    assert auth_source({"HOME": str(home)}, project) == f"apiKeyHelper in {local}"
    assert auth_source({"HOME": str(home)}) is None  # without the project, not seen
    user = home / ".claude" / "settings.json"
    user.parent.mkdir()
    user.write_text(json.dumps({"apiKeyHelper": "/usr/local/bin/key"}))
    assert auth_source({"HOME": str(home)}) == f"apiKeyHelper in {user}"


def test_unreadable_settings_are_no_source(home: Path) -> None:
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_bytes(b"\xff{not json")
    assert auth_source({"HOME": str(home)}) is None
