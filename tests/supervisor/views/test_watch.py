"""`unattended watch`: driven in a real 80x24 terminal by tmux (send-keys, capture-pane), and
as a plain snapshot when stdout is a pipe."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO_ROOT, git, run_cli, wait_for
from tests.supervisor.views.recorded import Recorded
from unattended.contracts.paths import RunPaths
from unattended.contracts.state import RunState
from unattended.contracts.status import RunStatus

SECRET = "SECRET-FILE-CONTENT-4242"


def stream_lines() -> list[dict]:
    """A worker's raw stream: a Write (with file contents), its result, then a Bash call."""

    def assistant(mid: str, block: dict) -> dict:
        return {
            "type": "assistant",
            "parent_tool_use_id": None,
            "session_id": "s7",
            "message": {
                "id": mid,
                "role": "assistant",
                "model": "claude-opus-4-8",
                "content": [block],
                "usage": {"input_tokens": 5, "cache_read_input_tokens": 120000},
            },
        }

    return [
        {"type": "system", "subtype": "init", "session_id": "s7", "model": "claude-opus-4-8"},
        assistant(
            "m1",
            {
                "type": "tool_use",
                "id": "t1",
                "name": "Write",
                "input": {"file_path": "src/names.py", "content": SECRET},
            },
        ),
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": SECRET}],
            },
        },
        assistant(
            "m2",
            {
                "type": "tool_use",
                "id": "t2",
                "name": "Bash",
                "input": {
                    "command": "pytest -q tests/test_names.py",
                    "description": "run the tests",
                },
            },
        ),
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t2", "content": SECRET}],
            },
        },
    ]


def make_running(rec: Recorded, iteration: int = 7) -> None:
    """The recorded run, resumed and alive: this test process plays the daemon and worker."""
    paths = RunPaths(rec.project)
    root = paths.records
    state = RunState.model_validate_json((root / "state.json").read_text())
    me = psutil.Process()
    now = datetime.now(UTC).replace(microsecond=0)
    state = state.model_copy(
        update={
            "status": RunStatus.RUNNING,
            "pid": me.pid,
            "pid_create_time": me.create_time(),
            "iteration": iteration,
            "worker_pid": me.pid,
            "worker_started_at": now - timedelta(seconds=252),
            "stop_reason": None,
            "exit_code": None,
            "deadline": now + timedelta(hours=5, minutes=30),
        }
    )
    (root / "state.json").write_text(state.to_json())
    text = "".join(json.dumps(line) + "\n" for line in stream_lines())
    (root / "iterations" / f"{iteration:04d}.jsonl").write_text(text)
    meter = {
        "schema_version": 1,
        "readings": 40,
        "failures": 0,
        "last_error": None,
        "last_reading": {
            "tokens": 124000,
            "percent": 62.0,
            "band": "normal",
            "window": 200000,
            "iteration": str(iteration),
            "session_id": "s7",
            "time": "2026-11-23T03:00:00Z",
        },
    }
    paths.root.mkdir(exist_ok=True)
    paths.context_meter.write_text(json.dumps(meter))


def test_snapshot_when_not_a_tty(recorded: Recorded, hermetic_env: dict[str, str]):
    make_running(recorded)
    done = run_cli(["watch", "--project", str(recorded.project)], hermetic_env, timeout=30)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) <= 24 and max(len(ln) for ln in lines) <= 80
    assert lines[1] == f"status    running (daemon pid {os.getpid()})   iteration 7 of 200"
    assert lines[2].startswith("deadline  ")
    assert "5h29m left" in lines[2] or "5h30m left" in lines[2]
    assert lines[3].startswith(f"worker    pid {os.getpid()}, running 4m1")
    assert lines[4] == "last      Bash: pytest -q tests/test_names.py"
    assert lines[5] == "context   62 % (normal), 124.0k tokens (iter 7)"
    assert lines[6] == "tokens    215.3k, cache read 1.46M"
    assert lines[7] == "cost      $2.54 of $10.00 cap (25 %)"
    assert lines[8] == "commits   5"
    assert lines[9].startswith("── run.log ──")
    assert lines[-1].startswith("2026-11-23T02:22:12Z run ended blocked (exit 4)")
    assert len(lines) == 20
    assert SECRET not in done.stdout

    # The live worker commits: watch counts it from git, not only from telemetry.
    (recorded.project / "x.txt").write_text("x\n")
    git(recorded.project, "add", "x.txt", env=hermetic_env)
    git(recorded.project, "commit", "-q", "-m", "live", env=hermetic_env)
    done = run_cli(["watch", "--project", str(recorded.project)], hermetic_env, timeout=30)
    assert "commits   6" in done.stdout.splitlines()


def test_snapshot_ended_and_no_run(recorded: Recorded, hermetic_env: dict[str, str], tmp_path):
    done = run_cli(["watch", "--project", str(recorded.project)], hermetic_env, timeout=30)
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[1] == "status    blocked (daemon exited)   iteration 6 of 200"
    assert lines[3].startswith("ended     the worker is blocked: needs the staging database")
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_cli(["watch", "--project", str(empty)], hermetic_env, timeout=30)
    assert done.returncode == 0
    assert done.stdout.splitlines()[1] == "no run yet here (start one: unattended start)"


# ----- in a real terminal -----------------------------------------------------------------


class Tmux:
    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"unattended-test-{uuid.uuid4().hex[:8]}"
        self.env = {k: v for k, v in env.items() if k not in ("TMUX", "TMUX_PANE")}
        self.env["TERM"] = "xterm-256color"

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "w")

    def wait_screen(self, text: str, timeout: float = 10.0) -> str:
        assert wait_for(lambda: text in self.screen(), timeout, 0.1), self.screen()
        return self.screen()


@pytest.fixture
def tmux(hermetic_env: dict[str, str]) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install -y tmux)")
    t = Tmux(hermetic_env)
    yield t
    subprocess.run(["tmux", "-L", t.socket, "kill-server"], env=t.env, capture_output=True)


def start_watch(tmux: Tmux, project: Path, tmp_path: Path) -> Path:
    """Run watch under bash in an 80x24 pane; the wrapper saves the tty mode before and after
    and watch's exit status."""
    out = tmp_path / "tty"
    out.mkdir()
    cmd = " ".join(
        shlex.quote(a)
        for a in [sys.executable, "-m", "unattended", "watch", "--project", str(project)]
    )
    script = (
        f"cd {shlex.quote(str(REPO_ROOT))}; stty -g > {out}/before; {cmd}; "
        f"echo $? > {out}/rc.tmp; stty -g > {out}/after; mv {out}/rc.tmp {out}/rc; "
        "sleep 60"
    )
    tmux("new-session", "-d", "-s", "w", "-x", "80", "-y", "24", f"bash -c {shlex.quote(script)}")
    return out


def test_watch_in_tmux_q_quits(recorded: Recorded, tmux: Tmux, tmp_path: Path):
    make_running(recorded)
    out = start_watch(tmux, recorded.project, tmp_path)
    screen = tmux.wait_screen("iteration 7 of 200")
    assert "running (daemon pid" in screen
    assert "last      Bash: pytest -q tests/test_names.py" in screen
    assert "context   62 % (normal)" in screen
    assert "q quits" in screen
    assert SECRET not in screen
    rows = screen.rstrip("\n").split("\n")
    assert len(rows) <= 24 and max(len(r) for r in rows) <= 80

    # It refreshes from the files by itself (at least once a second).
    make_running(recorded, iteration=8)
    started = time.monotonic()
    tmux.wait_screen("iteration 8 of 200", timeout=5)
    assert time.monotonic() - started < 3.0

    tmux("send-keys", "-t", "w", "q")
    assert wait_for(lambda: (out / "rc").exists(), 10), tmux.screen()
    assert (out / "rc").read_text().strip() == "0"
    assert (out / "after").read_text() == (out / "before").read_text()  # tty mode restored
    assert "iteration 8 of 200" not in tmux.screen()  # alternate screen left


def test_watch_in_tmux_ctrl_c_quits(recorded: Recorded, tmux: Tmux, tmp_path: Path):
    make_running(recorded)
    out = start_watch(tmux, recorded.project, tmp_path)
    tmux.wait_screen("iteration 7 of 200")
    tmux("send-keys", "-t", "w", "C-c")
    assert wait_for(lambda: (out / "rc").exists(), 10), tmux.screen()
    assert (out / "rc").read_text().strip() == "0"
    assert (out / "after").read_text() == (out / "before").read_text()
    assert "Traceback" not in tmux.screen()


def test_watch_in_tmux_sigterm_restores_the_terminal(
    recorded: Recorded, tmux: Tmux, tmp_path: Path
):
    make_running(recorded)
    out = start_watch(tmux, recorded.project, tmp_path)
    tmux.wait_screen("iteration 7 of 200")
    shell = psutil.Process(int(tmux("display-message", "-p", "-t", "w", "#{pane_pid}")))
    (watcher,) = [p for p in shell.children() if "unattended" in " ".join(p.cmdline())]
    watcher.terminate()
    assert wait_for(lambda: (out / "rc").exists(), 10), tmux.screen()
    assert (out / "rc").read_text().strip() == "0"
    assert (out / "after").read_text() == (out / "before").read_text()
