"""Issue 13 §8: every JSON and TOML file we read, damaged every which way (hypothesis drives the
mutations of tests/fuzzing.py), is either read or refused with the format's own error: one line
naming the file and what to do. Never another exception (a traceback for the user)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzzing as fz
from unattended.contracts.budget import LEDGER_HINT, BudgetLedger, LedgerFileError
from unattended.contracts.control import ControlFileError, parse_control
from unattended.contracts.registry import REGISTRY_HINT, RegistryError, parse_entry
from unattended.contracts.state import STATE_HINT, StateFileError, parse_state
from unattended.contracts.telemetry import TelemetryLine
from unattended.supervisor.records.readers import load_telemetry
from unattended.supervisor.run.settings import TOML_HINT, ConfigError, resolve_settings

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
RANDOMS = st.randoms(use_true_random=False)


def one_line(message: str, name: str, hint: str | None) -> None:
    assert "\n" not in message and name in message, message
    if hint is not None:
        assert message.endswith(hint), message


@FUZZ
@given(RANDOMS)
def test_state_json(rng: random.Random) -> None:
    data = fz.mutate_json(fz.valid_state("/p"), rng)
    try:
        parse_state(data, Path("/p/.unattended/state.json"))
    except StateFileError as exc:
        one_line(str(exc), "state.json", STATE_HINT)


@FUZZ
@given(RANDOMS)
def test_budget_json(rng: random.Random) -> None:
    data = fz.mutate_json(fz.valid_budget(), rng)
    try:
        BudgetLedger.from_json(data, "/p/.unattended/budget.json")
    except LedgerFileError as exc:
        one_line(str(exc), "budget.json", LEDGER_HINT)


@FUZZ
@given(RANDOMS)
def test_control_json(rng: random.Random) -> None:
    data = fz.mutate_json(fz.valid_control(), rng)
    try:
        parse_control(data, Path("/p/.unattended/control.json"))
    except ControlFileError as exc:
        one_line(str(exc), "control.json", None)


@FUZZ
@given(RANDOMS)
def test_registry_entry(rng: random.Random) -> None:
    data = fz.mutate_json(fz.valid_registry("/p"), rng)
    try:
        parse_entry(data, Path("/s/daemons/12.json"))
    except RegistryError as exc:
        one_line(str(exc), "12.json", REGISTRY_HINT)


@FUZZ
@given(rng=RANDOMS)
def test_telemetry_jsonl_is_read_as_far_as_it_goes(rng: random.Random, tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    path.write_bytes(fz.mutate_jsonl(fz.valid_telemetry(), rng))
    lines, bad = load_telemetry(path)  # never raises: bad lines are counted and skipped
    assert len(lines) <= 3 and all(isinstance(line, TelemetryLine) for line in lines)


@pytest.mark.parametrize("which", ["project", "user"])
@FUZZ
@given(rng=RANDOMS)
def test_unattended_toml_and_user_config(which: str, rng: random.Random, tmp_path: Path) -> None:
    project = tmp_path / "project"
    config = tmp_path / "config" / "unattended" / "config.toml"
    project.mkdir(exist_ok=True)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.unlink(missing_ok=True)
    target = project / "unattended.toml" if which == "project" else config
    (project / "unattended.toml").unlink(missing_ok=True)
    target.write_bytes(fz.mutate_toml(fz.VALID_TOML, rng))
    try:
        resolve_settings(project, {}, {"XDG_CONFIG_HOME": str(tmp_path / "config")})
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message, message
        named = str(target) in message or message.startswith("invalid setting")
        assert named, message
        if message.startswith(str(target)) and "cannot read" not in message:
            assert TOML_HINT in message or "unknown setting" in message, message
