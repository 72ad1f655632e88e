"""Reading ``.unattended/context-meter.json``, the hook's last reading, tolerantly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MeterReading:
    """The context meter's file, read tolerantly (another process writes it)."""

    readings: int | None
    failures: int | None
    last_error: str | None
    tokens: int | None
    percent: float | None
    band: str | None
    session_id: str | None
    time: str | None
    iteration: int | None = None
    window: int | None = None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def read_context_meter(path: Path) -> MeterReading | None:
    """None when there is no file or it is not a JSON object."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    # {"last": {...}}, {"last_reading": {...}} or the flat copies at the top level.
    last = next((raw[k] for k in ("last", "last_reading") if isinstance(raw.get(k), dict)), raw)
    tokens = _num(last.get("tokens"))
    percent = _num(last.get("percent", last.get("pct")))
    readings = _num(raw.get("readings"))
    failures = _num(raw.get("failures"))
    band = last.get("band")
    return MeterReading(
        readings=int(readings) if readings is not None else None,
        failures=int(failures) if failures is not None else None,
        last_error=str(raw["last_error"]) if raw.get("last_error") else None,
        tokens=int(tokens) if tokens is not None else None,
        percent=percent,
        band=band if isinstance(band, str) else None,
        session_id=last.get("session_id") if isinstance(last.get("session_id"), str) else None,
        time=last.get("time") if isinstance(last.get("time"), str) else None,
        iteration=_int_or_none(last.get("iteration")),
        window=_int_or_none(last.get("window")),
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
