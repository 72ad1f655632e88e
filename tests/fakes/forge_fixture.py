"""Pytest helpers that put the fake `gh` and `glab` (fake_forge.py) on PATH."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

FAKE_SCRIPT = Path(__file__).resolve().with_name("fake_forge.py")


class FakeForge:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin_dir = root / "bin"
        self.bin_dir.mkdir(parents=True)
        for tool in ("gh", "glab"):
            wrapper = self.bin_dir / tool
            # The fake answers as the tool it was installed as.
            wrapper.write_text(
                f"#!/bin/sh\nFAKE_FORGE_TOOL={tool} exec {shlex.quote(sys.executable)} "
                f'{shlex.quote(str(FAKE_SCRIPT))} "$@"\n'
            )
            wrapper.chmod(0o755)
        self.set(logged_in=True, prs=[])

    def set(self, **state: Any) -> None:
        current = self.state() if (self.root / "forge.json").exists() else {}
        current.update(state)
        (self.root / "forge.json").write_text(json.dumps(current))

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / "forge.json").read_text())

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        path = self.root / "calls.jsonl"
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return [r for r in rows if tool is None or r["tool"] == tool]

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {
            **base,
            "FAKE_FORGE_DIR": str(self.root),
            "PATH": f"{self.bin_dir}:{base.get('PATH', '')}",
        }


@pytest.fixture
def fake_forge(tmp_path: Path) -> FakeForge:
    return FakeForge(tmp_path / "fake-forge")
