"""Pytest helpers that put the scriptable fake `claude` (fake_claude.py) on PATH.

Usage in a test (after `from tests.fakes.claude_fixture import fake_claude` in conftest.py):

    def test_x(fake_claude, tmp_path):
        fake_claude.script([[{"do": "commit"}, "done"], ["blocked"]])
        env = {**os.environ, **fake_claude.env(home=True)}
        subprocess.run([fake_claude.bin, "-p", "hi", ...], env=env, cwd=repo)
        assert fake_claude.calls()[0]["env"]["UNATTENDED_ITERATION"] == "1"

The step format is documented at the top of fake_claude.py.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

FAKE_SCRIPT = Path(__file__).resolve().with_name("fake_claude.py")

Invocation = list[str | dict[str, Any]]


class FakeClaude:
    """A fake `claude` executable in its own bin dir, with its scenario and records in tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = Path(tmp_path) / "fake-claude"
        self.bin_dir = self.root / "bin"
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.home = self.root / "home"
        self.home.mkdir(exist_ok=True)
        self.scenario_path = self.root / "scenario.json"
        self.calls_path = Path(f"{self.scenario_path}.calls.jsonl")
        self.hooks_path = Path(f"{self.scenario_path}.hooks.jsonl")
        self.counter_path = Path(f"{self.scenario_path}.counter")
        self.bin = self.bin_dir / "claude"
        # exec keeps the pid: the supervisor's worker pid is the fake's pid.
        wrapper = (
            f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE_SCRIPT))} "$@"\n'
        )
        self.bin.write_text(wrapper, encoding="utf-8")
        self.bin.chmod(0o755)
        self.script([["commit", "done"]])

    def script(self, invocations: list[Invocation]) -> None:
        """Set the steps per invocation (the last repeats) and restart at the first one."""
        if not isinstance(invocations, list) or not invocations:
            raise ValueError("script() takes a non-empty list of invocations (lists of steps)")
        if not all(isinstance(inv, list) for inv in invocations):
            raise ValueError("each invocation is a list of steps, e.g. [['commit', 'done']]")
        tmp = self.scenario_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(invocations, indent=1), encoding="utf-8")
        os.replace(tmp, self.scenario_path)
        self.counter_path.unlink(missing_ok=True)

    def env(self, home: bool = False) -> dict[str, str]:
        """Env additions: PATH with bin_dir first and FAKE_CLAUDE_SCENARIO (HOME when asked)."""
        extra = {
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "FAKE_CLAUDE_SCENARIO": str(self.scenario_path),
        }
        if home:
            extra["HOME"] = str(self.home)
        return extra

    def calls(self) -> list[dict[str, Any]]:
        """One record per invocation so far (argv, cwd, env subset, pid/pgid/sid, fds...)."""
        return _read_jsonl(self.calls_path)

    def hook_runs(self) -> list[dict[str, Any]]:
        """One record per PostToolUse hook the fake ran (stdin sent, output, additional_context)."""
        return _read_jsonl(self.hooks_path)

    def transcripts(self) -> list[Path]:
        """Transcript files written under self.home (only when env(home=True) was used)."""
        return sorted((self.home / ".claude" / "projects").glob("*/*.jsonl"))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def fake_claude(tmp_path: Path) -> FakeClaude:
    """A FakeClaude scripted by default to commit once and report done on every invocation."""
    return FakeClaude(tmp_path)
