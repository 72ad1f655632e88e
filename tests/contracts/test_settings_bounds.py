"""Issue 13 §9: every numeric setting has a sane range; inf, nan and huge values are refused."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from unattended.contracts.settings import Settings


def _numeric_fields() -> list[tuple[str, type]]:
    found = []
    for name, field in Settings.model_fields.items():
        args = typing.get_args(field.annotation) or (field.annotation,)
        kinds = [a for a in args if a in (int, float)]
        if kinds:
            found.append((name, kinds[0]))
    return found


NUMERIC = _numeric_fields()


def test_the_numeric_settings_are_found() -> None:
    names = {name for name, _ in NUMERIC}
    assert {"hours", "max_iterations", "max_cost_usd", "grace_seconds", "keep_runs"} <= names


@pytest.mark.parametrize(("name", "kind"), NUMERIC)
def test_huge_infinite_and_nan_values_are_refused(name: str, kind: type) -> None:
    huge: list[object] = [10**300, 10**12 + 1] if kind is int else [1e300, 1e10, "inf", "nan"]
    if kind is float:
        huge += [float("inf"), float("-inf"), float("nan")]
    for value in huge:
        with pytest.raises(ValidationError):
            Settings.model_validate({name: value})


@pytest.mark.parametrize(("name", "kind"), NUMERIC)
def test_the_default_and_ordinary_values_still_pass(name: str, kind: type) -> None:
    default = Settings.model_fields[name].default
    Settings.model_validate({name: default})


def test_the_bounds_leave_room_for_real_runs() -> None:
    s = Settings(hours=24 * 365, max_iterations=100_000, max_cost_usd=10_000, worker_timeout=86400)
    assert s.hours == 8760 and s.max_iterations == 100_000
