"""Helpers for the safety-scenario tests: fast settings, reading run.log and events.jsonl.

Why a module of its own: every scenario starts the real daemon through the CLI and then reads
the same files back; keeping that in one place keeps each test about its rule.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import git, run_cli
from unattended.contracts.paths import RunPaths

# Every daemon in these tests: quick worker ends, Bash allowed without bypass mode (we are root).
FAST = ["--grace-seconds", "1", "--allowed-tools", "Bash,Write"]


def write_toml(project: Path, **settings: Any) -> None:
    """Write unattended.toml (never makes the tree dirty: it is on the default whitelist)."""
    lines = []
    for key, value in settings.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (str, list)):
            lines.append(f"{key} = {json.dumps(value)}")
        else:
            lines.append(f"{key} = {value}")
    (project / "unattended.toml").write_text("\n".join(lines) + "\n")


def run_log(project: Path) -> str:
    path = project / ".unattended" / "run.log"
    return path.read_text() if path.exists() else ""


def events(project: Path, kind: str | None = None) -> list[dict[str, Any]]:
    path = RunPaths(project).events
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if kind is None or r.get("kind") == kind]


def foreground(
    project: Path, env: dict[str, str], *args: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """`unattended start --foreground ...`: the exit code is the run's verdict."""
    return run_cli(["start", "--foreground", *FAST, *args], env, cwd=project, timeout=timeout)


def detached(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_cli(["start", *FAST, *args], env, cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def prompts(fake_claude: Any) -> list[str]:
    """The `-p` prompt each worker was given, in order."""
    return [call.get("prompt") or "" for call in fake_claude.calls()]


def head(project: Path) -> str:
    return git(project, "rev-parse", "HEAD")


def branch(project: Path) -> str:
    return git(project, "rev-parse", "--abbrev-ref", "HEAD")
