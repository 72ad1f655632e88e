"""The context band rule, once: the hook (after every tool call) and the daemon's rules agree.

Stdlib-free on purpose (not even ``typing``): the context-meter hook imports it under
``python -I -S`` and pays for every import.
"""


def context_percent(tokens: int, window: int) -> float:
    if window <= 0:
        raise ValueError(f"context window must be positive, not {window}")
    return max(0, tokens) / window * 100


def band_of(pct: float, warn_pct: float, stop_pct: float) -> str:
    """normal below ``warn_pct``, warn from it, stop from ``stop_pct`` (percent of the window).

    Compared after rounding to 9 places, so float noise cannot decide a boundary: 58,000 of
    100,000 tokens is 57.99999999999999 % in floating point, and 58 % it is.
    """
    pct = round(pct, 9)
    if pct >= stop_pct:
        return "stop"
    if pct >= warn_pct:
        return "warn"
    return "normal"


def context_band(tokens: int, window: int, warn_pct: float, stop_pct: float) -> str:
    return band_of(context_percent(tokens, window), warn_pct, stop_pct)
