"""How many of the oldest raw worker logs go, so that all of them stay under ``max_logs_mb``.

Pure: sizes in, a count out. The caller lists the logs oldest first (earlier runs, then this
run by iteration) and leaves ``room`` for the worker about to start (its own per-iteration cap),
so the total stays under the cap even while that worker writes.
"""

from __future__ import annotations

from collections.abc import Iterable


def logs_to_prune(sizes_oldest_first: Iterable[int], total: int, cap: int, room: int) -> int:
    """The number of leading logs to remove so that ``total - removed + room <= cap``; all of
    them when even that is not enough (a per-iteration cap above the total one). Reads only
    as many sizes as it removes: under the cap, none."""
    count, over = 0, total + room - cap
    if over <= 0:
        return 0
    for size in sizes_oldest_first:
        over -= size
        count += 1
        if over <= 0:
            break
    return count
