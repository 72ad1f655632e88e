"""The token budget ledger (``budget.json`` in the run records): reserve, record, reset.

Why a lock: several workers, steps or scripts may call ``unattended budget reserve`` at the same
moment, and ten parallel calls must never grant more than fits. Every change is a
read-modify-write done while holding ``fcntl.flock`` on a sibling lock file (the ledger itself
is replaced atomically on each write, so it cannot carry the lock), then written through
``supervisor.fsio.atomic_write``: a reader never sees half a file.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from unattended.supervisor.records.fsio import atomic_write, open_private_file, sys_calls

if TYPE_CHECKING:
    from unattended.contracts.budget import BudgetLedger
    from unattended.contracts.paths import RunPaths

LOCK_NAME = ".budget.lock"


def _now() -> datetime:
    return datetime.fromtimestamp(sys_calls.time(), UTC)


def new_ledger(budget: int | None = None) -> BudgetLedger:
    from unattended.contracts.budget import DEFAULT_BUDGET, BudgetLedger

    now = _now()
    return BudgetLedger(budget=budget or DEFAULT_BUDGET, created_at=now, updated_at=now)


def load(paths: RunPaths) -> BudgetLedger | None:
    """The ledger, or None when there is none yet; LedgerFileError when it is unreadable."""
    from unattended.contracts.budget import BudgetLedger, LedgerFileError

    try:
        data = paths.budget.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LedgerFileError(f"cannot read {paths.budget}: {exc.strerror or exc}") from None
    return BudgetLedger.from_json(data, str(paths.budget))


@contextmanager
def locked(paths: RunPaths, fresh: bool = False) -> Iterator[tuple[BudgetLedger, bool]]:
    """Hold the ledger lock; yield (ledger, existed) and write the ledger back on success.
    ``fresh`` starts from a new ledger without reading the old one (which may be corrupt)."""
    fd = open_private_file(paths.records / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        current = None if fresh else load(paths)
        ledger = current if current is not None else new_ledger()
        yield ledger, current is not None
        ledger.updated_at = _now()
        atomic_write(paths.budget, ledger.to_json())
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True)
class Reservation:
    granted: bool
    amount: int
    label: str
    ledger: BudgetLedger


def init(paths: RunPaths, budget: int) -> BudgetLedger:
    """Start a fresh ledger with this budget (usage and reservations start at zero)."""
    with locked(paths, fresh=True) as (ledger, _existed):
        ledger.budget = budget
    return ledger


def reserve(paths: RunPaths, amount: int, label: str) -> Reservation:
    """Grant ``amount`` while used + reserved + amount stays strictly below 95 % of the budget."""
    from unattended.safety.budget import can_reserve

    with locked(paths) as (ledger, _existed):
        granted = can_reserve(ledger.used, ledger.reserved, amount, ledger.budget)
        if granted:
            ledger.reserved += amount
            ledger.label(label).reserved += amount
    return Reservation(granted, amount, label, ledger)


def record(
    paths: RunPaths, amount: int, label: str, done: bool = False
) -> tuple[int, BudgetLedger]:
    """Add ``amount`` to used and release up to ``amount`` of the label's reservation, or all
    of it when ``done`` (the step finished under its estimate); returns (released, ledger)."""
    with locked(paths) as (ledger, _existed):
        entry = ledger.label(label)
        released = entry.reserved if done else min(amount, entry.reserved)
        entry.reserved -= released
        entry.used += amount
        ledger.reserved = max(0, ledger.reserved - released)
        ledger.used += amount
    return released, ledger


def reset(paths: RunPaths) -> BudgetLedger:
    """Zero usage and reservations; keep the budget."""
    with locked(paths) as (ledger, _existed):
        ledger.used = ledger.reserved = 0
        ledger.labels = {}
    return ledger


def report(ledger: BudgetLedger) -> dict[str, Any]:
    """The ``budget report --json`` document."""
    from unattended.safety.budget import alert_level

    return {
        "budget": ledger.budget,
        "used": ledger.used,
        "reserved": ledger.reserved,
        "available": max(0, ledger.budget - ledger.committed),
        "utilization": round(ledger.utilization, 1),
        "used_percent": round(ledger.used / ledger.budget * 100, 1),
        "alert_level": alert_level(ledger.committed, ledger.budget),
        "labels": {
            name: {"used": entry.used, "reserved": entry.reserved}
            for name, entry in sorted(ledger.labels.items())
        },
        "updated_at": ledger.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
