"""``.unattended/context-meter.json``: the context meter's last reading and its failures.

Written by the hook (``supervisor/hook/meter.py``, stdlib only, after every tool call: it
builds the same shape by hand and a test validates it against this model); read by ``status``,
``watch``, ``doctor``, ``step`` and ``budget`` through ``records.meter_file``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

METER_SCHEMA_VERSION = 1


class MeterFileError(ValueError):
    """The file exists but is not a context-meter file this version can read (one line)."""


class MeterReading(BaseModel):
    """One measurement of a worker's context, taken after one of its tool calls."""

    model_config = ConfigDict(extra="ignore")  # a newer hook may add fields

    tokens: int
    percent: float
    band: Literal["normal", "warn", "stop"]
    window: int
    session_id: str | None = None
    model: str | None = None
    iteration: int | None = None
    source: str = "transcript"
    compacted: bool = False
    time: str | None = None


class MeterFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = METER_SCHEMA_VERSION
    readings: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: str | None = None
    last_reading: MeterReading | None = None
    updated_at: str | None = None

    # The last reading's fields, for views that show one line of it.
    @property
    def tokens(self) -> int | None:
        return self.last_reading.tokens if self.last_reading else None

    @property
    def percent(self) -> float | None:
        return self.last_reading.percent if self.last_reading else None

    @property
    def band(self) -> str | None:
        return self.last_reading.band if self.last_reading else None

    @property
    def window(self) -> int | None:
        return self.last_reading.window if self.last_reading else None

    @property
    def session_id(self) -> str | None:
        return self.last_reading.session_id if self.last_reading else None

    @property
    def iteration(self) -> int | None:
        return self.last_reading.iteration if self.last_reading else None

    @property
    def time(self) -> str | None:
        return self.last_reading.time if self.last_reading else None


def parse_meter(text: str, where: object) -> MeterFile:
    from unattended.contracts.versioned import parse_versioned

    return parse_versioned(MeterFile, text, where, METER_SCHEMA_VERSION, MeterFileError)
