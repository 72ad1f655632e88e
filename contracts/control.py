"""``.unattended/control.json``: a request to change the caps of the live run.

Written atomically by ``unattended extend``; the daemon claims it at its next tick, applies it,
records the new caps and the ids of the requests it applied in state.json and deletes it. Calls
that overlap are merged under ``control.lock``. Values are absolute, never increments, so a
request applied twice (a crash mid-apply, or two ``extend`` calls merged) gives the same caps:

- ``hours``: the run's total hours; the deadline becomes ``started_at + hours``.
- ``max_iterations``: the total number of workers the run may start.
- ``max_cost_usd``: the total the run may spend.

Unknown fields are rejected (a newer CLI's request is refused whole, not half-applied).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from unattended.contracts.settings import MAX_COST_USD, MAX_HOURS, MAX_ITERATIONS
from unattended.contracts.timefmt import UtcDatetime
from unattended.contracts.versioned import parse_versioned

SCHEMA_VERSION = 1
CAP_FIELDS = ("hours", "max_iterations", "max_cost_usd")


class ControlFileError(Exception):
    """control.json cannot be used: corrupt, another version, or no valid change in it."""


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    request_id: str = Field(min_length=1)
    requested_at: UtcDatetime
    hours: float | None = Field(None, gt=0, le=MAX_HOURS)
    max_iterations: int | None = Field(None, ge=1, le=MAX_ITERATIONS)
    max_cost_usd: float | None = Field(None, gt=0, le=MAX_COST_USD)
    # Every `extend` call merged into this request (its own id included): each CLI checks that
    # the daemon applied its own, in state.json's ``applied_requests``.
    request_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> ControlRequest:
        if all(getattr(self, name) is None for name in CAP_FIELDS):
            raise ValueError(f"at least one of {', '.join(CAP_FIELDS)} is required")
        for name in ("hours", "max_cost_usd"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
        return self

    def changes(self) -> dict[str, float | int]:
        """The caps this request sets, in CAP_FIELDS order."""
        return {name: getattr(self, name) for name in CAP_FIELDS if getattr(self, name) is not None}

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def parse_control(data: str | bytes, path: Path) -> ControlRequest:
    """Parse control.json, turning every failure into one clear ``ControlFileError``."""
    return parse_versioned(ControlRequest, data, path, SCHEMA_VERSION, ControlFileError)
