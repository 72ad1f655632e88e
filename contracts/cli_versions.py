"""The Claude Code CLI versions this release is tested against (CI installs both ends).

A version inside the range is trusted; one outside it still runs, with one warning line in
run.log and a note in ``unattended doctor``, since the CLI's output formats change between
versions (``../shared/claude-cli-facts.md``: cumulative figures on resume since 2.1.332).
"""

from __future__ import annotations

import re

OLDEST_TESTED = "2.1.197"
NEWEST_TESTED = "2.1.332"
TESTED_VERSIONS = (OLDEST_TESTED, NEWEST_TESTED)

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """(major, minor, patch) from ``2.1.332`` or ``2.1.332 (Claude Code)``; None if none."""
    match = _VERSION.search(text or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def in_tested_range(text: str | None) -> bool | None:
    """True inside [OLDEST_TESTED, NEWEST_TESTED], False outside, None when unreadable."""
    version = parse_version(text)
    if version is None:
        return None
    oldest, newest = parse_version(OLDEST_TESTED), parse_version(NEWEST_TESTED)
    assert oldest is not None and newest is not None
    return oldest <= version <= newest


def untested_warning(version: str) -> str:
    return (
        f"Claude Code CLI {version} is outside the tested range {OLDEST_TESTED} to "
        f"{NEWEST_TESTED}: token and cost figures may be read wrong"
    )
