"""Concurrent ``extend`` calls are merged under a lock, and each says "applied" only for what
the daemon applied (issue 12 item 5)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.supervisor.run.conftest import make_state
from unattended.contracts.control import parse_control
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.supervisor.records import fsio
from unattended.supervisor.records.fsio import ensure_private_dir
from unattended.supervisor.records.state import read_state, write_state
from unattended.supervisor.run.control import apply_pending, write_request


@pytest.fixture
def run(tmp_path: Path):  # noqa: ANN201 - (paths, state, settings)
    paths = RunPaths(tmp_path / "proj")
    ensure_private_dir(paths.root)
    state = make_state(paths.project, 1, None)
    write_state(paths, state)
    return paths, state, Settings.model_validate(state.settings)


def test_a_request_written_while_another_is_being_written_is_merged(run, monkeypatch) -> None:
    paths, _state, _settings = run
    real_write = fsio.atomic_write
    first_writing, second_done = threading.Event(), threading.Event()

    def slow_first_write(path: Path, data, mode: int = 0o600) -> None:  # noqa: ANN001
        if threading.current_thread().name == "first" and path == paths.control:
            first_writing.set()
            second_done.wait(1.0)  # without a lock the second one finishes meanwhile
        real_write(path, data, mode)

    monkeypatch.setattr(fsio, "atomic_write", slow_first_write)
    first = threading.Thread(target=write_request, args=(paths,), kwargs={"hours": 30},
                             name="first")  # fmt: skip
    first.start()
    assert first_writing.wait(5.0)
    second = threading.Thread(
        target=lambda: (write_request(paths, max_iterations=300), second_done.set()),
        name="second",
    )
    second.start()
    first.join(5.0)
    second.join(5.0)
    merged = parse_control(paths.control.read_text(), paths.control)
    assert merged.changes() == {"hours": 30, "max_iterations": 300}
    assert len(merged.request_ids) == 2


def test_the_daemon_records_which_requests_it_applied(run) -> None:
    paths, state, settings = run
    one = write_request(paths, hours=30)
    two = write_request(paths, max_cost_usd=5.0)  # merged into the waiting one
    apply_pending(paths, state, settings, 1_900_000_000.0)
    saved = read_state(paths)
    assert {one.request_id, two.request_id} <= set(saved.applied_requests)
    paths.control.write_text("\xff not json")  # refused whole: nothing recorded as applied
    assert apply_pending(paths, state, settings, 1_900_000_000.0)[0].startswith("warning")
    assert read_state(paths).applied_requests == saved.applied_requests


def test_extend_says_not_applied_when_its_request_was_lost(run, monkeypatch) -> None:
    from unattended.supervisor.cli import extend as extend_cli

    paths, state, settings = run
    monkeypatch.setattr(
        "unattended.supervisor.records.liveness.pid_is_alive", lambda pid, created: True
    )
    stop = threading.Event()

    def daemon_losing_requests() -> None:
        """Applies a rival request in place of whatever was written: the lost update."""
        while not stop.is_set():
            if paths.control.exists():
                paths.control.unlink()
                write_request(paths, hours=40)
                apply_pending(paths, state, settings, 1_900_000_000.0)
            stop.wait(0.01)

    daemon = threading.Thread(target=daemon_losing_requests)
    daemon.start()
    try:
        app = _app(extend_cli.extend)
        result = CliRunner().invoke(app, ["--project", str(paths.project), "--hours", "30"])
    finally:
        stop.set()
        daemon.join(5.0)
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        "unattended: not applied: the daemon did not apply hours 30 (see run.log, "
        "`unattended logs`)"
    ]


def _app(command):  # noqa: ANN001, ANN202
    import typer

    app = typer.Typer()
    app.command()(command)
    return app
