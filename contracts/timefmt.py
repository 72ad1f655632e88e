"""ISO 8601 UTC timestamps with a ``Z`` suffix, second precision: ``2026-11-23T03:12:09Z``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer

# A run id names directories (runs/<run_id>/, reports/<run_id>/): a file that says
# "../../x" or holds a NUL byte must be refused, never followed.
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN)]

# No timestamp of ours is before 1970 or after 2999: outside that, deadline arithmetic would
# overflow datetime (year 9999) in a reader.
MIN_YEAR, MAX_YEAR = 1970, 2999


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _as_utc(moment: datetime) -> datetime:
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"timestamp out of range (years {MIN_YEAR}-{MAX_YEAR})")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(utc_iso, return_type=str, when_used="json"),
]


def fmt_duration(seconds: float) -> str:
    """People's durations, as run.log and every view print them: 45s, 4m12s, 3h05m."""
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
