"""`start` without typer: entry's fast path parses exactly what the typer command parses."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest

from unattended.supervisor.cli import entry, start_run
from unattended.supervisor.cli.start_args import (
    INVOCATION_FLAGS,
    SETTING_FLAGS,
    VALUE_OPTIONS,
    parse_start_args,
)

ARGV = [
    "--project", "/tmp/somewhere", "--hours", "1.5", "--max-iterations=7", "--prompt", "-x",
    "--allow-dirty", "--dry-run", "--json", "--model", "opus", "--max-cost-usd", "1e2",
]  # fmt: skip


def test_the_table_is_the_typer_commands_options() -> None:
    from unattended.supervisor.cli.start import start

    params = inspect.signature(start).parameters
    hints = typing.get_type_hints(start, include_extras=True)
    settings = {n for n in params if n not in ("project", "run_id", *INVOCATION_FLAGS.values())}
    assert settings == set(VALUE_OPTIONS) | set(SETTING_FLAGS)
    for name, kind in VALUE_OPTIONS.items():
        assert typing.get_args(typing.get_args(hints[name])[0]) == (kind, type(None)), name
    assert set(INVOCATION_FLAGS.values()) <= set(params)


def captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, dict]]:
    calls: list[tuple[object, dict]] = []

    def fake_run_start(opts: object, values: dict) -> int:
        calls.append((opts, dict(values)))
        return 0

    monkeypatch.setattr(start_run, "run_start", fake_run_start)
    import unattended.supervisor.cli.start as start_mod

    monkeypatch.setattr(start_mod, "run_start", fake_run_start)
    return calls


def test_fast_path_and_typer_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = captured(monkeypatch)
    assert entry._start_fast_path(ARGV) == 0
    from unattended.supervisor.cli.app import run_cli

    assert run_cli(["start", *ARGV]) == 0
    (fast_opts, fast_values), (typer_opts, typer_values) = calls
    assert fast_opts == typer_opts
    assert fast_values == typer_values
    assert fast_opts.project == Path("/tmp/somewhere") and fast_opts.json_out
    assert fast_values["prompt"] == "-x" and fast_values["max_iterations"] == 7


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["-h"],
        ["--hours"],  # a missing value
        ["--hours", "soon"],  # not a number
        ["--max-iterations", "1.5"],
        ["--max_iterations", "3"],
        ["--no-such-option"],
        ["--dry-run=yes"],
        ["positional"],
        ["--", "--hours", "1"],
    ],
)
def test_anything_unusual_goes_to_typer(argv: list[str]) -> None:
    assert parse_start_args(argv) is None


def test_typer_reports_what_the_fast_path_declines(capsys: pytest.CaptureFixture[str]) -> None:
    assert entry._dispatch(["start", "--hours", "soon"]) == 2
    assert "Usage: unattended start" in capsys.readouterr().err  # typer's own message
