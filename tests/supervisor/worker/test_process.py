"""The worker module against real child processes: the fake claude on PATH."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from unattended.platform_adapters import process, proctree
from unattended.supervisor.worker.process import SpawnError, Worker, WorkerSpec


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "work"], cwd=path, check=True)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "root"],
        cwd=path,
        check=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )
    return path


@pytest.fixture(autouse=True)
def as_subreaper():
    """The daemon is a child subreaper on Linux; so is this test process (orphans reaped after)."""
    proctree.become_subreaper()
    yield
    proctree.reap_orphans()


def spec_for(fake_claude, repo: Path, tmp_path: Path, **overrides) -> WorkerSpec:
    env = {
        **os.environ,
        **fake_claude.env(home=True),
        "IS_SANDBOX": "1",
        "GIT_AUTHOR_NAME": "w",
        "GIT_AUTHOR_EMAIL": "w@w",
        "GIT_COMMITTER_NAME": "w",
        "GIT_COMMITTER_EMAIL": "w@w",
    }
    values = dict(
        argv=[
            str(fake_claude.bin),
            "-p",
            "task",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "bypassPermissions",
        ],
        cwd=repo,
        env=env,
        stdout_path=tmp_path / "0001.jsonl",
        stderr_path=tmp_path / "0001.stderr",
        timeout_s=60.0,
        stall_s=60.0,
        grace_s=2.0,
        max_log_bytes=200 * 1024 * 1024,
    )
    values.update(overrides)
    return WorkerSpec(**values)


def run_to_end(worker: Worker, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not worker.finished:
        assert time.monotonic() < deadline, "worker did not finish"
        worker.pump(0.2)
    # Reaped and forgotten: the daemon's list of live children no longer has it.
    assert worker.pid not in {pid for pid, _ in process.live_identities()}


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_done_run_streams_to_disk_and_parses_result(fake_claude, repo, tmp_path) -> None:
    fake_claude.script([["commit", "done"]])
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path))
    run_to_end(worker)
    outcome = worker.record()
    assert outcome.exit_code == 0 and outcome.ended_by is None
    assert outcome.stream.result is not None
    assert "UNATTENDED_DONE" in outcome.stream.result.result.splitlines()
    assert outcome.stream.tool_calls >= 1
    lines = (tmp_path / "0001.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "result"
    call = fake_claude.calls()[0]
    assert call["sid"] == call["pid"], "the worker leads its own session"
    assert call["stdin"] != "tty"


def test_missing_binary_is_a_spawn_error(fake_claude, repo, tmp_path) -> None:
    spec = spec_for(fake_claude, repo, tmp_path, argv=[str(tmp_path / "nope"), "-p", "x"])
    with pytest.raises(SpawnError, match="no such file"):
        Worker.spawn(spec)


def test_nonzero_exit_keeps_last_stderr_line(fake_claude, repo, tmp_path) -> None:
    fake_claude.script([[{"do": "exit", "code": 3, "stderr": "first\nError: the real reason"}]])
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path))
    run_to_end(worker)
    outcome = worker.record()
    assert outcome.exit_code == 3
    assert outcome.stream.result is None
    assert outcome.last_stderr_line == "Error: the real reason"


def test_timeout_ends_tree_including_tool_child_in_own_session(fake_claude, repo, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    fake_claude.script(
        [[{"do": "grandchild", "pid_file": str(pid_file)}, "ignore_sigterm", "hang"]]
    )
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path, timeout_s=1.5, grace_s=1.0))
    run_to_end(worker, 30)
    outcome = worker.record()
    grandchild = int(pid_file.read_text())
    assert outcome.ended_by == "timeout"
    assert not alive(worker.pid) and not alive(grandchild)


def test_grandchild_outliving_a_finished_worker_is_killed(fake_claude, repo, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    fake_claude.script(
        [[{"do": "grandchild", "pid_file": str(pid_file), "hold_stdout": True}, "done"]]
    )
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path))
    run_to_end(worker, 30)
    outcome = worker.record()
    assert outcome.exit_code == 0 and outcome.stream.result is not None
    grandchild = int(pid_file.read_text())
    assert not alive(grandchild)
    assert grandchild in outcome.killed


def pump_until_finished(worker: Worker, pump_s: float) -> float:
    """Seconds until the worker finished, pumped with long timeouts (the loop uses its tick)."""
    started = time.monotonic()
    while not worker.finished:
        assert time.monotonic() - started < 4 * pump_s, "worker did not finish"
        worker.pump(pump_s)
    return time.monotonic() - started


def test_a_worker_closing_stdout_before_it_exits_is_over_at_its_exit(fake_claude, repo, tmp_path):
    # Its fds close a moment before the exit: a pump after EOF waits for the exit itself,
    # never for the rest of its timeout (which made a busy daemon's gap a second longer).
    argv = ["/bin/sh", "-c", "exec >&-; sleep 0.3"]
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path, argv=argv))
    assert pump_until_finished(worker, 30.0) < 15
    assert worker.record().exit_code == 0
    # One pump from the EOF to the exit: the loop gets no tick (no state write) in between.
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path, argv=argv))
    worker.pump(30.0)
    assert worker.finished


def test_the_root_exiting_wakes_the_pump_while_a_child_holds_stdout(fake_claude, repo, tmp_path):
    argv = ["/bin/sh", "-c", "sleep 60 & echo $! > child.pid; sleep 0.3"]
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path, argv=argv))
    assert pump_until_finished(worker, 30.0) < 15
    child = int((repo / "child.pid").read_text())
    assert child in worker.record().killed and not alive(child)


def test_detached_grandchild_is_found_as_subreaper(fake_claude, repo, tmp_path):
    if not proctree.is_subreaper():
        pytest.skip("no PR_SET_CHILD_SUBREAPER on this platform")
    pid_file = tmp_path / "grandchild.pid"
    fake_claude.script([[{"do": "grandchild", "pid_file": str(pid_file), "detach": True}, "done"]])
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path))
    run_to_end(worker, 30)
    grandchild = int(pid_file.read_text())
    assert not alive(grandchild)


def test_stall_watchdog_ends_a_silent_idle_worker(fake_claude, repo, tmp_path, monkeypatch):
    monkeypatch.setattr("unattended.supervisor.worker.process.CPU_SAMPLE_S", 0.3)
    fake_claude.script([["hang"]])
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path, stall_s=1.5, grace_s=1.0))
    run_to_end(worker, 30)
    assert worker.record().ended_by == "stall"


def test_busy_silent_tool_is_not_a_stall(fake_claude, repo, tmp_path, monkeypatch):
    monkeypatch.setattr("unattended.supervisor.worker.process.CPU_SAMPLE_S", 0.3)
    fake_claude.script([[{"do": "busy", "seconds": 3}, "done"]])
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path, stall_s=1.5))
    run_to_end(worker, 30)
    outcome = worker.record()
    assert outcome.ended_by is None and outcome.stream.result is not None


def test_stop_sigint_gives_the_cli_its_clean_stop(fake_claude, repo, tmp_path):
    fake_claude.script([[{"do": "sleep", "seconds": 30}, "done"]])
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path, grace_s=5.0))
    worker.pump(0.5)
    started = time.monotonic()
    worker.stop("stop")
    outcome = worker.record()
    assert time.monotonic() - started < 4
    assert outcome.ended_by == "stop"
    assert outcome.stream.result is not None  # the CLI prints a result on SIGINT
    assert outcome.stream.result.subtype == "error_during_execution"


def test_huge_output_is_capped_on_disk_and_parsed_in_full(fake_claude, repo, tmp_path):
    fake_claude.script([[{"do": "spew", "mb": 40}, "done"]])
    spec = spec_for(fake_claude, repo, tmp_path, max_log_bytes=4 * 1024 * 1024)
    worker = Worker.spawn(spec)
    rss_before = psutil.Process().memory_info().rss
    run_to_end(worker, 120)
    outcome = worker.record()
    rss_growth = psutil.Process().memory_info().rss - rss_before
    assert outcome.stream.result is not None, "the final result after 40 MB is still parsed"
    size = spec.stdout_path.stat().st_size
    assert 4 * 1024 * 1024 <= size < 5 * 1024 * 1024
    text = spec.stdout_path.read_bytes()
    assert b'"unattended_truncated"' in text
    assert json.loads(text.splitlines()[-1])["type"] == "result"
    assert outcome.log_bytes_dropped > 30 * 1024 * 1024
    assert rss_growth < 30 * 1024 * 1024
    assert not list(tmp_path.glob("*.tail*"))


def test_a_200_kib_prompt_goes_on_stdin_not_on_the_command_line(fake_claude, repo, tmp_path):
    """Issue 13 §3: the prompt is readable by every local user in /proc/<pid>/cmdline, and an
    argv string over 128 KiB fails every spawn with E2BIG."""
    prompt = "".join(f"line {i}: fix the failing test number {i}\n" for i in range(5000))
    prompt = (prompt * (200 * 1024 // len(prompt) + 1))[: 200 * 1024] + "SECRET-PROMPT-END"
    fake_claude.script([["hang"]])
    staged = tmp_path / ".0001.prompt"
    argv = [str(fake_claude.bin), "-p", "--output-format", "stream-json", "--verbose"]
    worker = Worker.spawn(
        spec_for(fake_claude, repo, tmp_path, argv=argv, prompt=prompt, prompt_path=staged)
    )
    try:
        deadline = time.monotonic() + 30
        while not fake_claude.calls():
            assert time.monotonic() < deadline, "the fake never started"
            worker.pump(0.1)
        cmdline = Path(f"/proc/{worker.pid}/cmdline").read_bytes()
        assert b"SECRET-PROMPT-END" not in cmdline and b"fix the failing" not in cmdline
        assert not staged.exists(), "the staged prompt is unlinked once the worker has it"
    finally:
        worker.stop("stop")
    call = fake_claude.calls()[0]
    assert call["stdin"] == "file"
    assert call["prompt"] == prompt, "the whole prompt arrives byte-exact"


def test_staging_the_prompt_never_follows_a_planted_symlink(fake_claude, repo, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    staged = tmp_path / ".0001.prompt"
    staged.symlink_to(victim)
    worker = Worker.spawn(spec_for(fake_claude, repo, tmp_path, prompt="task", prompt_path=staged))
    run_to_end(worker)
    assert victim.read_text() == "precious\n"
    assert fake_claude.calls()[0]["prompt"] == "task\ntask"  # argv "task" + stdin "task"
