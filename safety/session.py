"""Session policy: resume the previous worker's session, or start fresh (issue 6 §3).

A fresh session per iteration pays a cold start every time (the worker re-reads the project);
resuming is cheaper while it is safe. ``auto`` resumes only a worker that ended cleanly, made
progress and stayed in the normal context band; a handoff or a model change always starts fresh.
"""

from __future__ import annotations

from typing import Literal

from unattended.contracts.iteration import IterationRecord
from unattended.safety.bands import context_band

Policy = Literal["auto", "fresh", "continue"]


def session_to_resume(
    last: IterationRecord | None,
    policy: Policy,
    *,
    model_changed: bool,
    window: int,
    warn_pct: float,
    stop_pct: float,
) -> str | None:
    """The session id the next worker should resume, or None for a fresh session."""
    if policy == "fresh" or last is None or not last.session_id:
        return None
    if last.handed_off or model_changed:
        return None
    clean = last.saw_result and not last.is_error
    if policy == "continue":
        return last.session_id if clean else None
    if last.compactions:
        return None  # the CLI compacted it: a summary is a worse start than a fresh session
    from unattended.contracts.context_window import auto_compact_point, bands_before_compaction

    warn, stop = bands_before_compaction(window, warn_pct, stop_pct, auto_compact_point(window))
    band = context_band(last.context_peak_tokens, window, warn, stop)
    return last.session_id if clean and last.made_progress and band == "normal" else None
