"""``.unattended/budget.json``: the token budget ledger behind ``unattended budget``.

A persistent account of a token budget shared by steps, workers or scripts: what was used,
what is reserved for work under way, and the same per label. Written atomically under a lock
by ``supervisor.ledger``; readers reject versions they cannot read with ``LedgerFileError``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from unattended.contracts.timefmt import UtcDatetime
from unattended.contracts.versioned import parse_versioned

SCHEMA_VERSION = 1
DEFAULT_BUDGET = 200_000  # tokens, as in the budget-monitor design (safety.budget agrees)
DEFAULT_LABEL = "unlabelled"


LEDGER_HINT = "move it aside, or `unattended budget init` starts a new ledger over it"


class LedgerFileError(Exception):
    """budget.json exists but cannot be read: corrupt, or written by another version."""


class LabelUsage(BaseModel):
    used: int = Field(0, ge=0)
    reserved: int = Field(0, ge=0)


class BudgetLedger(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    budget: int = Field(DEFAULT_BUDGET, gt=0)
    used: int = Field(0, ge=0)
    reserved: int = Field(0, ge=0)
    labels: dict[str, LabelUsage] = Field(default_factory=dict)
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @property
    def committed(self) -> int:
        """Used plus reserved: what reservations are checked against."""
        return self.used + self.reserved

    @property
    def utilization(self) -> float:
        """Committed tokens as a percent of the budget."""
        return self.committed / self.budget * 100

    def label(self, name: str) -> LabelUsage:
        return self.labels.setdefault(name, LabelUsage())

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def from_json(cls, data: str | bytes, where: str = "budget.json") -> BudgetLedger:
        return parse_versioned(cls, data, where, SCHEMA_VERSION, LedgerFileError, LEDGER_HINT)
