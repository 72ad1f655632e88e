"""`unattended extend` and the daemon side, apply_pending, with real files and processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import read_state as read_state_json
from tests.conftest import run_cli, wait_for
from tests.supervisor.run.conftest import make_state
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.supervisor.records.fsio import ensure_private_dir
from unattended.supervisor.records.state import read_state, write_state
from unattended.supervisor.run.control import apply_pending, claimed_path, write_request

FAST = ["--grace-seconds", "2", "--allowed-tools", "Bash"]
SLEEPY = [[{"do": "sleep", "seconds": 30}, "text"]]


@pytest.fixture
def run(tmp_path: Path):  # noqa: ANN201 - (paths, state, settings) of a run 5 minutes old
    project = tmp_path / "proj"
    paths = RunPaths(project)
    ensure_private_dir(paths.root)
    state = make_state(project, 1, None)
    write_state(paths, state)
    return paths, state, Settings.model_validate(state.settings)


def test_nothing_pending_is_a_no_op(run) -> None:  # noqa: ANN001
    paths, state, settings = run
    before = paths.state.read_bytes()
    assert apply_pending(paths, state, settings, time.time()) == []
    assert paths.state.read_bytes() == before


def test_hours_means_total_from_start(run) -> None:  # noqa: ANN001
    paths, state, settings = run
    write_request(paths, hours=30)
    assert json.loads(paths.control.read_text())["hours"] == 30
    lines = apply_pending(paths, state, settings, time.time())
    deadline = state.started_at + timedelta(hours=30)
    assert lines == [f"extend: hours 24 → 30 (deadline {deadline:%Y-%m-%dT%H:%M:%SZ})"]
    assert state.deadline == deadline and settings.hours == 30 and state.settings["hours"] == 30
    saved = read_state(paths)
    assert saved.deadline == deadline and saved.settings["hours"] == 30
    assert not paths.control.exists() and not claimed_path(paths).exists()


def test_iterations_and_cost_together(run) -> None:  # noqa: ANN001
    paths, state, settings = run
    write_request(paths, max_iterations=300)
    write_request(paths, max_cost_usd=8.5)  # merged over the one still waiting
    lines = apply_pending(paths, state, settings, time.time())
    assert lines == ["extend: max_iterations 200 → 300", "extend: max_cost_usd none → $8.5"]
    assert state.max_iterations == 300 and settings.max_iterations == 300
    assert settings.max_cost_usd == 8.5 and state.settings["max_cost_usd"] == 8.5
    saved = read_state(paths)
    assert saved.max_iterations == 300 and saved.settings["max_cost_usd"] == 8.5
    assert saved.deadline == state.deadline  # hours untouched


def test_lowering_below_what_is_used_says_so(run) -> None:  # noqa: ANN001
    paths, state, settings = run
    write_request(paths, hours=0.01, max_iterations=2, max_cost_usd=1.0)
    lines = apply_pending(paths, state, settings, time.time())
    assert "already past, the run ends as capped" in lines[0]
    assert "iteration 3 reached" in lines[1]
    assert "$1.25 already spent" in lines[2]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{oops", "not valid JSON"),
        ('{"schema_version": 2, "hours": 3}', "schema_version 2"),
        (
            '{"schema_version": 1, "request_id": "a", "requested_at": "2026-11-23T03:12:09Z",'
            ' "hours": -3}',
            "field hours",
        ),
        (
            '{"schema_version": 1, "request_id": "a", "requested_at": "2026-11-23T03:12:09Z"}',
            "at least one of",
        ),
        (
            '{"schema_version": 1, "request_id": "a", "requested_at": "2026-11-23T03:12:09Z",'
            ' "hours": 3, "pause": true}',
            "field pause",
        ),
    ],
)
def test_invalid_request_is_removed_with_one_warning(run, content: str, expected: str) -> None:  # noqa: ANN001
    paths, state, settings = run
    before = paths.state.read_bytes()
    paths.control.write_text(content)
    lines = apply_pending(paths, state, settings, time.time())
    assert len(lines) == 1 and lines[0].startswith("warning: extend:") and expected in lines[0]
    assert not paths.control.exists() and not claimed_path(paths).exists()
    assert paths.state.read_bytes() == before and settings.hours == 24


def test_a_claimed_leftover_is_applied_first(run) -> None:  # noqa: ANN001
    """A daemon that died mid-apply left control.json.applying: the next one applies it."""
    paths, state, settings = run
    write_request(paths, max_iterations=50)
    paths.control.rename(claimed_path(paths))
    write_request(paths, max_iterations=60)
    assert apply_pending(paths, state, settings, time.time()) == ["extend: max_iterations 200 → 50"]
    assert apply_pending(paths, state, settings, time.time()) == ["extend: max_iterations 50 → 60"]
    assert apply_pending(paths, state, settings, time.time()) == []


# ----- the CLI ---------------------------------------------------------------------------

APPLIER = """
import os, sys, time
from pathlib import Path
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.supervisor.run.control import apply_pending
from unattended.supervisor.records.liveness import process_create_time
from unattended.supervisor.records.state import read_state, write_state
paths = RunPaths(Path(sys.argv[1]))
state = read_state(paths)
state.pid, state.pid_create_time = os.getpid(), process_create_time(os.getpid())
write_state(paths, state)
settings = Settings.model_validate(state.settings)
print("ready", flush=True)
while True:
    for line in apply_pending(paths, state, settings, time.time()):
        print(line, flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def applier(run, hermetic_env: dict[str, str]) -> Iterator:  # noqa: ANN001
    """A real process standing in for the daemon: it only calls apply_pending every tick."""
    paths = run[0]
    procs: list[subprocess.Popen] = []

    def start(tick: float = 0.2) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", APPLIER, str(paths.project), str(tick)],
            env=hermetic_env,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_cli_bad_input_one_line_exit_2(run, hermetic_env: dict[str, str]) -> None:  # noqa: ANN001
    project = str(run[0].project)
    for args, needle in (
        ([], "nothing to change"),
        (["--hours", "0"], "--hours must be a positive"),
        (["--hours", "nan"], "--hours must be a positive"),
        (["--max-iterations", "0"], "--max-iterations must be at least 1"),
        (["--max-cost-usd", "-2"], "--max-cost-usd must be a positive"),
        # Issue 13 §9: out of any sane range (1e9 hours once overflowed the deadline: traceback).
        (["--hours", "1e9"], "--hours must be a positive number of hours, at most 8784"),
        (["--hours", "inf"], "not inf"),
        (["--hours", "1e300"], "at most 8784"),
        (["--max-iterations", "10000000"], "at most 1000000"),
        (["--max-cost-usd", "1e300"], "at most 1000000"),
    ):
        proc = run_cli(["extend", "--project", project, *args], hermetic_env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("unattended: ") and needle in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not run[0].control.exists()


def test_cli_no_active_run_exit_2(run, hermetic_env: dict[str, str], tmp_path: Path) -> None:  # noqa: ANN001
    """Exit 2 with one line: 1 is the internal-error code (issue 14 item 17)."""
    paths, state, _ = run
    state.pid, state.pid_create_time = 1, 1.0  # pid 1 with another create time: not our daemon
    write_state(paths, state)
    proc = run_cli(["extend", "--project", str(paths.project), "--hours", "30"], hermetic_env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("unattended: no active run") and proc.stderr.count("\n") == 1
    assert not paths.control.exists()
    never_ran = tmp_path / "never"
    never_ran.mkdir()
    proc = run_cli(["extend", "--project", str(never_ran), "--hours", "30"], hermetic_env)
    assert proc.returncode == 2 and "no active run" in proc.stderr


def test_cli_applied_by_a_ticking_process(run, applier, hermetic_env: dict[str, str]) -> None:  # noqa: ANN001
    paths = run[0]
    proc_daemon = applier(0.2)
    args = ["extend", "--project", str(paths.project), "--hours", "30", "--max-cost-usd", "9"]
    proc = run_cli(args, hermetic_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("applied: deadline ")
    assert "30h in all" in proc.stdout and "max cost $9 ($1.25 spent)" in proc.stdout
    saved = read_state_json(paths.project)
    assert saved["settings"]["hours"] == 30 and saved["settings"]["max_cost_usd"] == 9
    proc_daemon.kill()
    out = proc_daemon.communicate()[0]
    assert "extend: hours 24 → 30" in out and "extend: max_cost_usd none → $9" in out


def test_cli_pending_when_the_daemon_is_slow(run, applier, hermetic_env: dict[str, str]) -> None:  # noqa: ANN001
    paths = run[0]
    applier(3600)  # alive, but never ticks again after its first pass
    proc = run_cli(
        ["extend", "--project", str(paths.project), "--max-iterations", "9"], hermetic_env
    )
    assert proc.returncode == 0, proc.stderr
    assert "will apply it at its next tick" in proc.stdout
    assert json.loads(paths.control.read_text())["max_iterations"] == 9
    args = ["extend", "--project", str(paths.project), "--max-iterations", "8", "--json"]
    doc = json.loads(run_cli(args, hermetic_env).stdout)  # one document, nothing else
    assert (doc["applied"], doc["requested"]) == (False, {"max_iterations": 8})
    assert doc["project"] == str(paths.project.resolve())


def test_extend_live_daemon(project: Path, hermetic_env: dict[str, str], fake_claude) -> None:
    fake_claude.script(SLEEPY)
    assert run_cli(["start", *FAST], hermetic_env, cwd=project).returncode == 0
    assert wait_for(lambda: read_state_json(project)["status"] == "running", 30)
    args = ["extend", "--hours", "30", "--max-iterations", "7", "--max-cost-usd", "5"]
    proc = run_cli(args, hermetic_env, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("applied: "), proc.stdout
    state = read_state(RunPaths(project))
    assert state is not None
    assert state.deadline == state.started_at + timedelta(hours=30)
    assert state.max_iterations == 7 and state.settings["max_cost_usd"] == 5
    log = (project / ".unattended" / "run.log").read_text()
    assert "extend: hours 24 → 30" in log and "extend: max_iterations 200 → 7" in log
    stop = run_cli(["stop", "--now", "--wait", "--timeout", "30"], hermetic_env, cwd=project)
    assert stop.returncode == 0


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
_REQUESTS = st.fixed_dictionaries(
    {"schema_version": st.sampled_from([1, 1, 1, 2, "1", None])},
    optional={
        "request_id": st.text(max_size=14) | _JSON_VALUES,
        "requested_at": st.sampled_from(["2026-11-23T03:12:09Z", "", "yesterday", 0]),
        "hours": st.floats() | st.integers() | _JSON_VALUES,
        "max_iterations": st.integers() | _JSON_VALUES,
        "max_cost_usd": st.floats() | st.integers() | _JSON_VALUES,
    },
).map(lambda d: json.dumps(d).encode())
_CONTROL_FILES = st.binary(max_size=200) | _REQUESTS | _REQUESTS.map(lambda b: b[:-1] + b"\xff}")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=_CONTROL_FILES)
def test_any_control_file_is_applied_or_refused_never_fatal(run, content: bytes) -> None:  # noqa: ANN001
    """Fuzzed control.json (one \\xff byte used to kill the daemon): never an exception, the
    file is always gone afterwards, and a refusal is exactly one warning line."""
    paths, state, run_settings = run
    paths.control.write_bytes(content)
    lines = apply_pending(paths, state, run_settings, time.time())
    assert lines, "a control file must be answered in run.log"
    if lines[0].startswith("warning:"):
        assert len(lines) == 1
    assert not paths.control.exists() and not claimed_path(paths).exists()
