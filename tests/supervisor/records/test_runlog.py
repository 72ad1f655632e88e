"""run.log and events.jsonl from one event dict rendered by structlog (issue 14 item 7b): the
exact line formats, events kept until the readiness handshake, the reopen after rotation, and
structlog never imported by `start`, `status` or the hook."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unattended.supervisor.records import runlog as runlog_mod
from unattended.supervisor.records.runlog import RunLog

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / ".unattended" / "run.log", tmp_path / ".unattended" / "events.jsonl"


def test_one_event_two_renderings(paths: tuple[Path, Path], monkeypatch) -> None:
    monkeypatch.setattr(runlog_mod.sys_calls, "time", lambda: 1_764_633_600.25)
    log = RunLog(*paths, run_id="r1")
    log.ready()
    log.separator("run r1")
    log.event("new run r1", kind="start")
    log.event("worker 1 exited 0", iteration=1, kind="iteration", tokens=12, path=Path("/x"))
    log.machine("worker_exit", iteration=1, code=0)
    log.close()
    assert paths[0].read_text() == (
        "----- run r1 -----\n"
        "2025-12-02T00:00:00Z new run r1\n"
        "2025-12-02T00:00:00Z iter 1 worker 1 exited 0\n"
    )
    records = [json.loads(line) for line in paths[1].read_text().splitlines()]
    base = {"time": "2025-12-02T00:00:00Z", "epoch": 1_764_633_600.25, "run_id": "r1"}
    assert records == [
        {**base, "kind": "start", "iteration": None, "message": "new run r1"},
        {**base, "kind": "iteration", "iteration": 1, "tokens": 12, "path": "/x",
         "message": "worker 1 exited 0"},
        {**base, "kind": "worker_exit", "iteration": 1, "code": 0},
    ]  # fmt: skip
    assert list(records[1]) == ["time", "epoch", "run_id", "kind", "iteration", "tokens", "path",
                                "message"]  # fmt: skip


def test_events_before_the_handshake_wait_with_their_time(paths, monkeypatch) -> None:
    clock = iter([100.0, 200.0])
    monkeypatch.setattr(runlog_mod.sys_calls, "time", lambda: next(clock))
    log = RunLog(*paths)
    seen: list[str] = []
    log.echo = seen.append
    log.event("early")
    assert paths[0].exists() and paths[0].read_text() == ""  # run.log exists for `start`
    assert seen == ["1970-01-01T00:01:40Z early"]  # the foreground echo is immediate
    log.ready()
    log.event("late")
    assert paths[0].read_text().splitlines() == [
        "1970-01-01T00:01:40Z early",
        "1970-01-01T00:03:20Z late",
    ]
    log.close()


def test_an_early_end_still_writes(paths) -> None:
    log = RunLog(*paths)
    log.event("cannot start: state.json is busy", kind="error")
    log.close()
    assert re.fullmatch(f"{STAMP} cannot start: state.json is busy\n", paths[0].read_text())
    assert json.loads(paths[1].read_text())["kind"] == "error"


def test_reopens_after_rotation_and_removal(paths) -> None:
    log = RunLog(*paths)
    log.ready()
    log.event("one")
    paths[0].rename(paths[0].with_name("run.log.1"))
    log.event("two")
    paths[0].unlink()
    paths[1].unlink()
    log.event("three")
    log.close()
    assert paths[0].with_name("run.log.1").read_text().endswith(" one\n")
    assert paths[0].read_text().endswith(" three\n")
    assert json.loads(paths[1].read_text())["message"] == "three"
    assert paths[0].stat().st_mode & 0o777 == 0o600


def test_structlog_is_imported_only_when_ready(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; "
        "from unattended.supervisor.records.runlog import RunLog; "
        f"log = RunLog(Path({str(tmp_path)!r}) / 'run.log', Path({str(tmp_path)!r}) / 'e'); "
        "log.event('x'); before = 'structlog' in sys.modules; log.ready(); "
        "print(before, 'structlog' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout  # fmt: skip
    assert out.split() == ["False", "True"]


def _imports(env: dict[str, str], cwd: Path, *args: str, stdin: bytes = b"") -> str:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "unattended", *args],
        env=env, cwd=cwd, input=stdin, capture_output=True, timeout=60,
    )  # fmt: skip
    return proc.stderr.decode()


def test_start_status_and_hook_never_import_structlog(project: Path, hermetic_env) -> None:
    started = _imports(hermetic_env, project, "start", "--allowed-tools", "Bash")
    assert "unattended.supervisor.run.daemon" in started  # the CLI side of start, measured
    assert "structlog" not in started
    assert "structlog" not in _imports(hermetic_env, project, "status")
    assert "structlog" not in _imports(hermetic_env, project, "status", "--json")
    hook = _imports(hermetic_env, project, "hook", "context-meter", stdin=b"{}")
    assert "unattended.supervisor.hook.meter" in hook and "structlog" not in hook
    # ... while the daemon it started did render its log with it.
    from tests.conftest import wait_for

    log = project / ".unattended" / "run.log"
    assert wait_for(lambda: log.exists() and " new run " in log.read_text(), 30)
