"""Is there a credential the claude CLI would accept? Presence only, never a value.

``start`` refuses without one (a run would fail with exit 7 two seconds later) and ``doctor``
reports the same finding. Nothing here reads a secret into anything but a yes/no: variables are
tested for being non-empty, credential files for existing, settings files only for whether an
``apiKeyHelper`` key is there, the macOS keychain for whether the item exists (never ``-w``).
No API call is made.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

KEY_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")
CLOUD_VARIABLES = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY")
KEYCHAIN_SERVICE = "Claude Code-credentials"
KEYCHAIN_TIMEOUT_S = 5.0
MANAGED_SETTINGS = (
    Path("/etc/claude-code/managed-settings.json"),
    Path("/Library/Application Support/ClaudeCode/managed-settings.json"),
)

def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def _config_dirs(environ: Mapping[str, str]) -> list[Path]:
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    dirs = [Path(environ["CLAUDE_CONFIG_DIR"])] if environ.get("CLAUDE_CONFIG_DIR") else []
    return [*dirs, home / ".claude"]


def _has_key(path: Path, key: str) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and bool(data.get(key))


def _in_keychain(environ: Mapping[str, str]) -> bool:
    """The login keychain holds the CLI's item (macOS); ``security`` without ``-w`` or ``-g``
    prints only its attributes, and we keep only the exit status."""
    if sys.platform != "darwin":
        return False
    from unattended.platform_adapters.process import run as run_bounded

    argv = ["security", "find-generic-password", "-s", KEYCHAIN_SERVICE]
    try:
        return run_bounded(argv, timeout_s=KEYCHAIN_TIMEOUT_S, env=environ).ok
    except OSError:
        return False


def auth_source(environ: Mapping[str, str], project: Path | None = None) -> str | None:
    """Where the CLI would find a credential, said for people (no value in it); None: nowhere."""
    for var in KEY_VARIABLES:
        if environ.get(var, "").strip():
            return f"{var} is set in the environment"
    for var in CLOUD_VARIABLES:
        if _truthy(environ.get(var)):
            return f"{var} is set (cloud-provider credentials)"
    config_dirs = _config_dirs(environ)
    for path in (d / ".credentials.json" for d in config_dirs):
        try:
            if path.is_file() and path.stat().st_size > 2:
                return f"logged in ({path} present)"
        except OSError:
            continue
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    claude_json = [d / ".claude.json" for d in config_dirs[:-1]] + [home / ".claude.json"]
    for path in claude_json:
        if _has_key(path, "oauthAccount"):
            return f"logged in (oauthAccount in {path})"
    settings = [d / "settings.json" for d in config_dirs]
    if project is not None:
        settings += [project / ".claude" / "settings.json", project / ".claude/settings.local.json"]
    for path in [*settings, *MANAGED_SETTINGS]:
        if _has_key(path, "apiKeyHelper"):
            return f"apiKeyHelper in {path}"
    if _in_keychain(environ):
        return "logged in (macOS keychain)"
    return None
