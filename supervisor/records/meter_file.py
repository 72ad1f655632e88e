"""The one reader of ``.unattended/context-meter.json`` (the hook's last reading)."""

from __future__ import annotations

from pathlib import Path

from unattended.contracts.meter import MeterFile, MeterFileError, parse_meter


def read_context_meter(path: Path) -> MeterFile | None:
    """None when there is no file yet; MeterFileError (one line) when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MeterFileError(f"{path}: {exc.strerror or exc}") from None
    return parse_meter(text, path)


def read_context_meter_or_none(path: Path) -> MeterFile | None:
    """For the views that redraw every second: an unreadable file shows as no reading."""
    try:
        return read_context_meter(path)
    except MeterFileError:
        return None
