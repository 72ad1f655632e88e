"""context-meter.json: one model, one reader, one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unattended.contracts.meter import MeterFileError, parse_meter
from unattended.supervisor.records.meter_file import read_context_meter, read_context_meter_or_none

READING = {"tokens": 150_000, "percent": 75.0, "band": "warn", "window": 200_000}


def test_a_reading_and_its_one_line_view(tmp_path: Path) -> None:
    path = tmp_path / "context-meter.json"
    path.write_text(json.dumps({"schema_version": 1, "readings": 3, "last_reading": READING}))
    meter = read_context_meter(path)
    assert meter is not None and meter.readings == 3 and meter.failures == 0
    assert (meter.tokens, meter.percent, meter.band, meter.window) == (
        150_000,
        75.0,
        "warn",
        200_000,
    )


def test_no_file_is_no_reading(tmp_path: Path) -> None:
    assert read_context_meter(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"schema_version": 9}', "schema_version 9 is not supported"),
        (json.dumps({"schema_version": 1, "last_reading": {**READING, "band": "red"}}), "band"),
    ],
)
def test_unreadable_files_are_refused_in_one_line(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "context-meter.json"
    path.write_text(text)
    with pytest.raises(MeterFileError) as caught:
        read_context_meter(path)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    assert str(path) in str(caught.value)
    assert read_context_meter_or_none(path) is None


def test_a_newer_hook_may_add_fields() -> None:
    text = json.dumps({"schema_version": 1, "extra": 1, "last_reading": {**READING, "new": 2}})
    assert parse_meter(text, "x").band == "warn"
