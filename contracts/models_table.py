"""Context windows and prices of Claude models, by model name.

Why a table here: the context meter needs the window of the worker's model (200k or 1M tokens,
never one hard-coded number) and the caps need the price of a worker that was killed before
its ``result`` event told us ``total_cost_usd``, and every iteration is priced twice: as the
CLI reported it and from this table (the CLI's own figure has been off the published price:
``claude-sonnet-4-6`` at Opus rates, 1-hour cache writes at the 5-minute rate). The prices are
the published per-million-token ones: 5-minute cache writes 1.25x input, 1-hour cache writes
2x input, cache reads 0.1x input unless a row says otherwise, and the long-context tier of the
models that have one (a request of more than 200k input tokens pays the tier's prices for all of
its tokens). Checked against ccusage on real transcripts (tests/data/real) and against the CLI:
1M input + 100k output + 5k cache read + 7k cache write on ``claude-opus-4-8[1m]`` gave $7.54625.

Standard library only: the context-meter hook imports this on its fast path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from unattended.contracts.context_window import DEFAULT_WINDOW, LARGE_WINDOW, table_window

__all__ = ["DEFAULT_WINDOW", "LARGE_WINDOW", "table_window"]  # re-exported: one table of windows

CACHE_WRITE_FACTOR = 1.25  # 5-minute cache writes cost 1.25x the input price
CACHE_WRITE_1H_FACTOR = 2.0  # 1-hour cache writes cost 2x the input price
LONG_CONTEXT_FROM = 200_000  # input tokens of one request above which a long-context tier applies
CACHE_READ_FACTOR = 0.1  # cache hits cost 0.1x the input price unless a row says otherwise

_NEW_STYLE = re.compile(r"(opus|sonnet|haiku|fable|mythos)[-_.]?(\d{1,2})(?:[-_.](\d{1,2}))?(?!\d)")
_OLD_STYLE = re.compile(r"claude[-_](\d)(?:[-_.](\d))?[-_](opus|sonnet|haiku)")
_FAMILY_ONLY = re.compile(r"(opus|sonnet|haiku|fable|mythos)")


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None  # None: CACHE_READ_FACTOR x input
    long_context: Price | None = None  # the prices of a request above LONG_CONTEXT_FROM

    @property
    def cache_write(self) -> float:
        return self.input * CACHE_WRITE_FACTOR

    @property
    def cache_write_1h(self) -> float:
        return self.input * CACHE_WRITE_1H_FACTOR

    @property
    def cache_hit(self) -> float:
        return self.input * CACHE_READ_FACTOR if self.cache_read is None else self.cache_read


# The most expensive family: what an unknown model is priced at, so caps err on the safe side.
MOST_EXPENSIVE = Price(15.0, 75.0)

# (family, lowest version (major, minor) the row applies to, price); first match wins, so rows
# of one family go from the newest version down.
_PRICES: tuple[tuple[str, tuple[int, int], Price], ...] = (
    ("fable", (5, 1), Price(10.0, 50.0, 0.25)),
    ("fable", (0, 0), Price(10.0, 50.0)),
    ("mythos", (5, 1), Price(10.0, 50.0, 0.25)),
    ("mythos", (0, 0), Price(10.0, 50.0)),
    ("opus", (5, 5), Price(4.0, 20.0, 0.2)),
    ("opus", (4, 6), Price(5.0, 25.0, long_context=Price(10.0, 37.5))),
    ("opus", (4, 5), Price(5.0, 25.0)),
    ("opus", (0, 0), Price(15.0, 75.0)),
    ("sonnet", (5, 5), Price(2.0, 10.0, 0.1)),
    ("sonnet", (5, 0), Price(2.0, 10.0)),
    ("sonnet", (4, 0), Price(3.0, 15.0, long_context=Price(6.0, 22.5))),
    ("sonnet", (0, 0), Price(3.0, 15.0)),
    ("haiku", (5, 5), Price(0.1, 0.5)),  # the <= 100k-token prompt band
    ("haiku", (4, 0), Price(1.0, 5.0)),
    ("haiku", (3, 5), Price(0.8, 4.0)),
    ("haiku", (0, 0), Price(0.25, 1.25)),
)
# A bare alias ("opus", "sonnet", "haiku"): the family's current price, leaning expensive.
_ALIAS_PRICES = {
    "opus": Price(5.0, 25.0),
    "sonnet": Price(3.0, 15.0),
    "haiku": Price(1.0, 5.0),
    "fable": Price(10.0, 50.0),
    "mythos": Price(10.0, 50.0),
}


def parse_model(model: str | None) -> tuple[str | None, tuple[int, int] | None]:
    """(family, (major, minor)) from ids like ``claude-opus-4-8[1m]``, ``claude-3-5-haiku-2024``,
    ``us.anthropic.claude-sonnet-4-5-20250929-v1:0`` or the alias ``opus``; Nones if unknown."""
    if not model:
        return None, None
    name = model.lower()
    old = _OLD_STYLE.search(name)
    if old:
        return old.group(3), (int(old.group(1)), int(old.group(2) or 0))
    new = _NEW_STYLE.search(name)
    if new:
        return new.group(1), (int(new.group(2)), int(new.group(3) or 0))
    bare = _FAMILY_ONLY.search(name)
    return (bare.group(1), None) if bare else (None, None)


def price_for(model: str | None) -> Price:
    """The per-million-token price of ``model``; unknown models get the most expensive one."""
    family, version = parse_model(model)
    if family is None:
        return MOST_EXPENSIVE
    if version is None:
        return _ALIAS_PRICES.get(family, MOST_EXPENSIVE)
    for row_family, since, price in _PRICES:
        if row_family == family and version >= since:
            return price
    return MOST_EXPENSIVE


def price_usage(
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    cache_write: int,
    cache_read: int,
    cache_write_1h: int = 0,
    long_context: bool = False,
) -> float:
    """USD for this usage at the published prices. ``cache_write`` counts every cache write,
    ``cache_write_1h`` how many of them were 1-hour writes (the rest are 5-minute ones).
    ``long_context``: the usage is of requests above LONG_CONTEXT_FROM input tokens, priced at
    the model's long-context tier when it has one."""
    p = price_for(model)
    if long_context and p.long_context is not None:
        p = p.long_context
    cache_write, cache_write_1h = max(0, cache_write), max(0, cache_write_1h)
    cache_write_1h = min(cache_write_1h, cache_write)
    total = (
        max(0, input_tokens) * p.input
        + max(0, output_tokens) * p.output
        + (cache_write - cache_write_1h) * p.cache_write
        + cache_write_1h * p.cache_write_1h
        + max(0, cache_read) * p.cache_hit
    )
    return round(total / 1_000_000, 9)


def request_is_long(input_tokens: int, cache_write: int, cache_read: int) -> bool:
    """Does one request's input put it in the long-context tier?"""
    return max(0, input_tokens) + max(0, cache_write) + max(0, cache_read) > LONG_CONTEXT_FROM


def context_window_for(model: str | None, reported: int | None, override: int | None) -> int:
    """The window to measure a worker's context against.

    The user's setting wins, then what the CLI reported (``modelUsage.<model>.contextWindow``),
    then the table. An unknown model gets the smaller window: warning early is the safe error.
    """
    if override is not None and override > 0:
        return int(override)
    if reported is not None and reported > 0:
        return int(reported)
    return table_window(model)
