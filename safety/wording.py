"""How the rules write instants, spans and quoted text in their reasons (one place, one style).

Reasons end up in run.log and state.json, read by a person in the morning: times are ISO 8601
UTC like every other timestamp of the product, spans are rounded to what a person cares about.
"""

from __future__ import annotations

from unattended.contracts.timefmt import from_epoch, utc_iso


def when(epoch: float) -> str:
    """An instant (epoch seconds) as ISO 8601 UTC, e.g. ``2026-11-23T03:12:09Z``."""
    return utc_iso(from_epoch(epoch))


def span(seconds: float) -> str:
    """A duration for people: ``45s``, ``12 min``, ``3.5 h`` (negative spans read as 0s)."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def short(text: str | None, limit: int = 160) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``limit`` characters with an ellipsis."""
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
