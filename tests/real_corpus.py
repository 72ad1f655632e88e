"""The corpus of real Claude Code CLI outputs in ``tests/data/real`` (see its SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REAL = Path(__file__).resolve().parent / "data" / "real"
STREAMS = REAL / "streams"
TRANSCRIPTS = REAL / "transcripts"


def stream_files() -> list[Path]:
    return sorted(STREAMS.glob("*.jsonl"))


def stream_expected() -> dict[str, Any]:
    return json.loads((STREAMS / "expected.json").read_text())


def transcript_dirs() -> list[Path]:
    return sorted(p for p in TRANSCRIPTS.iterdir() if p.is_dir())


def ccusage() -> dict[str, Any]:
    return json.loads((TRANSCRIPTS / "ccusage.json").read_text())


def main_transcripts(folder: Path) -> list[Path]:
    """The session files of a transcript folder (their subagents/ are found from them)."""
    return sorted(folder.glob("*.jsonl"))
