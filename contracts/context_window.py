"""Context windows as the CLI uses them, and where it compacts a conversation by itself.

Standard library only and no ``re``: the context-meter hook reads this after every tool call.
"""

from __future__ import annotations

DEFAULT_WINDOW = 200_000
LARGE_WINDOW = 1_000_000
_FAMILIES = ("opus", "sonnet", "haiku", "fable", "mythos")
# Lowest version of each family with a 1M-token window by default; a "[1m]" suffix means 1M for
# any model. Seen with CLI 2.1.197 and 2.1.332: claude-opus-4-6, claude-sonnet-4-6,
# claude-opus-4-8 and claude-sonnet-5 report contextWindow 200000 (1M only as "[1m]"),
# claude-opus-5-5 and claude-sonnet-5-5 report 1000000 with no suffix.
_LARGE_WINDOW_FROM = {
    "fable": (0, 0),
    "mythos": (0, 0),
    "opus": (5, 5),
    "sonnet": (5, 5),
    "haiku": (5, 5),
}


def _number(text: str, start: int) -> tuple[int | None, int]:
    """A one- or two-digit number at ``start`` not followed by another digit (a date is not a
    version), and where it ends."""
    end = start
    while end < len(text) and text[end].isdigit():
        end += 1
    if not 1 <= end - start <= 2:
        return None, start
    return int(text[start:end]), end


def _new_style_version(name: str) -> tuple[str, tuple[int, int]] | None:
    """("opus", (4, 6)) from ``claude-opus-4-6-20260101``; None for old-style or unknown ids."""
    for family in _FAMILIES:
        at = name.find(family)
        if at < 0:
            continue
        pos = at + len(family)
        if pos < len(name) and name[pos] in "-_.":
            pos += 1
        major, pos = _number(name, pos)
        if major is None:
            return None
        minor = 0
        if pos + 1 < len(name) and name[pos] in "-_.":
            found, _end = _number(name, pos + 1)
            minor = found if found is not None else 0
        return family, (major, minor)
    return None


def table_window(model: str | None) -> int:
    """The window of ``model`` as the CLI gives it: 1M for "[1m]" ids and models that are 1M
    by default, else 200k (an unknown model gets the smaller window: warning early is safe)."""
    if not model:
        return DEFAULT_WINDOW
    name = model.lower()
    if "[1m]" in name:
        return LARGE_WINDOW
    if name[:1].isdigit() or "claude-3" in name or "claude-2" in name:
        return DEFAULT_WINDOW  # old-style ids (claude-3-5-sonnet…) are all 200k models
    found = _new_style_version(name)
    if found is None:
        return DEFAULT_WINDOW
    since = _LARGE_WINDOW_FROM.get(found[0])
    return LARGE_WINDOW if since is not None and found[1] >= since else DEFAULT_WINDOW


# ----- the CLI's own auto-compaction ----------------------------------------------------------
# Measured with CLI 2.1.197 and 2.1.332 (identical): a 200k window compacts once a request's
# context reaches 167 000 tokens (window - 33 000: 83.5 %); a 1M window never compacts ahead of
# time (only after the API refused a request as too long). CLAUDE_CODE_AUTO_COMPACT_WINDOW=N
# makes it compact at N - 33 000 (a 1M model too); CLAUDE_AUTOCOMPACT_PCT_OVERRIDE=P at P % of
# (window - 20 000) when that is lower; DISABLE_AUTO_COMPACT=1 turns it off, and the CLI then
# refuses by itself ("Prompt is too long") a little above window - 23 000.
AUTO_COMPACT_RESERVE = 33_000
AUTO_COMPACT_PCT_RESERVE = 20_000
NO_COMPACT_REFUSAL_RESERVE = 23_000
# The handoff must reach the worker before the CLI compacts: one more tool result may land
# between the reading and the next request.
HANDOFF_HEADROOM = 10_000
MIN_BAND_GAP_PCT = 5.0


def _positive(environ: dict[str, str] | None, name: str) -> float | None:
    try:
        value = float((environ or {}).get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def auto_compact_point(window: int, environ: dict[str, str] | None = None) -> int | None:
    """Context tokens at which the CLI compacts (or refuses) by itself; None: not ahead of time.

    ``environ`` is the worker's environment (its CLAUDE_* variables move the point)."""
    env = environ or {}
    if env.get("DISABLE_AUTO_COMPACT", "").strip() not in ("", "0", "false"):
        return window - NO_COMPACT_REFUSAL_RESERVE if window <= DEFAULT_WINDOW else None
    moved = _positive(env, "CLAUDE_CODE_AUTO_COMPACT_WINDOW")
    if moved is None and window > DEFAULT_WINDOW:
        return None
    effective = min(window, int(moved)) if moved else window
    if effective <= 2 * AUTO_COMPACT_RESERVE:
        return None  # no CLI window is this small: a test's or a user's odd figure
    point = effective - AUTO_COMPACT_RESERVE
    pct = _positive(env, "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE")
    if pct is not None and pct <= 100:
        point = min(point, int(pct / 100 * (effective - AUTO_COMPACT_PCT_RESERVE)))
    return max(1, point)


def bands_before_compaction(
    window: int, warn_pct: float, stop_pct: float, compact_at: int | None
) -> tuple[float, float]:
    """(warn, stop) percentages that act before the CLI compacts at ``compact_at`` tokens: the
    stop band is lowered to HANDOFF_HEADROOM below that point, the warn band kept below it."""
    if compact_at is None or window <= 0:
        return warn_pct, stop_pct
    cap = round(100.0 * (compact_at - HANDOFF_HEADROOM) / window, 1)
    stop = max(MIN_BAND_GAP_PCT * 2, min(stop_pct, cap))
    warn = warn_pct if warn_pct < stop else max(MIN_BAND_GAP_PCT, stop - MIN_BAND_GAP_PCT)
    return warn, stop
