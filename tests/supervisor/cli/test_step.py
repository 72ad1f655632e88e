"""``unattended step``: the run.log line, the iteration's steps record, and the live reading."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from unattended.contracts.paths import RunPaths
from unattended.supervisor.records.steps import read_steps

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    return d


def step(args: list[str], env: dict, cwd: Path):  # noqa: ANN201
    return run_cli(["step", *args], env, cwd=cwd)


def test_step_outside_a_worker(hermetic_env: dict, proj: Path) -> None:
    proc = step(["--complete", "1", "--desc", "wrote the parser", "--tokens", "50000"],
                hermetic_env, proj)  # fmt: skip
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (
        proc.stdout == "Step 1 completed: Tokens: 25.0%; Status: OK, updated — wrote the parser\n"
    )
    log = (proj / ".unattended" / "run.log").read_text()
    assert re.fullmatch(
        f"{STAMP} Step 1 completed: Tokens: 25.0%; Status: OK, updated — wrote the parser\n", log
    )
    assert (proj / ".unattended" / "run.log").stat().st_mode & 0o777 == 0o600
    (item,) = read_steps(RunPaths(proj), None)
    assert item["step"] == 1
    assert (item["desc"], item["status"], item["action"]) == ("wrote the parser", "OK", "updated")
    assert (item["tokens"], item["percent"], item["window"]) == (50_000, 25.0, 200_000)
    assert re.fullmatch(STAMP, item["time"])


def test_step_nok_and_custom_action(hermetic_env: dict, proj: Path) -> None:
    base = ["--desc", "tests", "--tokens", "1000"]
    nok = step(["--complete", "2", "--status", "NOK", *base], hermetic_env, proj)
    assert nok.stdout == "Step 2 completed: Tokens: 0.5%; Status: NOK, failed — tests\n"
    custom = step(["--complete", "3", "--status", "ok", "--action", "refactored", *base],
                  hermetic_env, proj)  # fmt: skip
    assert custom.stdout == "Step 3 completed: Tokens: 0.5%; Status: OK, refactored — tests\n"
    steps = read_steps(RunPaths(proj), None)
    assert [(s["step"], s["status"], s["action"]) for s in steps] == [
        (2, "NOK", "failed"),
        (3, "OK", "refactored"),
    ]


def test_step_inside_a_worker_uses_the_live_reading(hermetic_env: dict, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    state = project / ".unattended"
    state.mkdir(parents=True)
    env = {**hermetic_env, "UNATTENDED_PROJECT": str(project), "UNATTENDED_ITERATION": "7"}
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    missing = step(["--complete", "1", "--desc", "x"], env, elsewhere)
    assert missing.returncode == 2
    assert missing.stderr == (
        "unattended: pass --tokens N: the context meter has not produced a reading in this "
        "run yet\n"
    )
    reading = {"tokens": 330_000, "window": 1_000_000, "iteration": 7, "band": "normal"}
    reading["percent"] = 33.0
    meter = {"schema_version": 1, "readings": 1, "last_reading": reading}
    (state / "context-meter.json").write_text(json.dumps(meter))
    proc = step(["--complete", "4", "--desc", "migrated the schema"], env, elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stdout
        == "Step 4 completed: Tokens: 33.0%; Status: OK, updated — migrated the schema\n"
    )
    log = (state / "run.log").read_text()
    assert re.fullmatch(f"{STAMP} iter 7 Step 4 completed: Tokens: 33.0%; Status: OK, updated"
                        " — migrated the schema\n", log)  # fmt: skip
    assert (state / "iterations" / "0007.steps.jsonl").is_file()
    (item,) = read_steps(RunPaths(project), 7)
    assert (item["step"], item["tokens"], item["window"]) == (4, 330_000, 1_000_000)
    assert not (elsewhere / ".unattended").exists()  # written to the worker's project
    # --tokens wins over the reading; the window still comes from the daemon's variable.
    env["UNATTENDED_CONTEXT_WINDOW"] = "400000"
    (state / "context-meter.json").unlink()
    proc = step(["--complete", "5", "--desc", "y", "--tokens", "100000"], env, elsewhere)
    assert proc.stdout == "Step 5 completed: Tokens: 25.0%; Status: OK, updated — y\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--complete", "1", "--desc", "x"], "unattended: pass --tokens N: not inside"),
        (["--complete", "1", "--desc", "x", "--tokens", "5", "--status", "MAYBE"],
         "unattended: --status must be OK or NOK, not 'MAYBE'"),
        (["--complete", "1", "--desc", "  ", "--tokens", "5"], "unattended: --desc must not be"),
        (["--complete", "1", "--desc", "x", "--tokens", "-5"],
         "unattended: --tokens must not be negative"),
    ],
)  # fmt: skip
def test_step_bad_input(hermetic_env: dict, proj: Path, args: list[str], message: str) -> None:
    proc = step(args, hermetic_env, proj)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message)
    assert "Traceback" not in proc.stderr
    assert not (proj / ".unattended" / "run.log").exists()


def test_steps_interleave_whole_lines_with_the_daemon(hermetic_env: dict, proj: Path) -> None:
    """Parallel steps and another appender (standing in for the daemon's RunLog) never tear a
    line: every line of run.log is whole."""
    writer = (
        "import sys\n"
        "from pathlib import Path\n"
        "from unattended.supervisor.records.runlog import RunLog\n"
        "d = Path(sys.argv[1]) / '.unattended'\n"
        "log = RunLog(d / 'run.log', d / 'events.jsonl')\n"
        "log.ready()\n"
        "for i in range(200): log.event('daemon line ' + 'x' * 300, iteration=1)\n"
    )
    daemon = subprocess.Popen([sys.executable, "-c", writer, str(proj)], env=hermetic_env)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "unattended",
                "step",
                "--complete",
                str(n),
                "--desc",
                "d",
                "--tokens",
                "2000",
            ],
            env=hermetic_env,
            cwd=proj,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        for n in range(6)
    ]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert daemon.wait(timeout=60) == 0
    lines = (proj / ".unattended" / "run.log").read_text().splitlines()
    assert len(lines) == 206
    pattern = re.compile(f"{STAMP} (iter 1 daemon line x{{300}}|Step \\d completed: .*updated — d)")
    assert all(pattern.fullmatch(line) for line in lines)
    assert len(read_steps(RunPaths(proj), None)) == 6


def test_read_steps_skips_junk(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path)
    assert read_steps(paths, 3) == []
    paths.iterations.mkdir(parents=True)
    (paths.iterations / "0003.steps.jsonl").write_text('{"step": 1}\nnot json\n[2]\n{"step": 2}\n')
    assert read_steps(paths, 3) == [{"step": 1}, {"step": 2}]


def test_seed_option_names_and_cycle_end(hermetic_env: dict, proj: Path) -> None:
    """`--step-complete N --step-desc TEXT` and `--cycle-end REASON`, as in the seeds."""
    proc = step(["--step-complete", "2", "--step-desc", "parser  done", "--tokens", "1200"],
                hermetic_env, proj)  # fmt: skip
    assert proc.stdout == "Step 2 completed: Tokens: 0.6%; Status: OK, updated — parser done\n"
    close = step(["--cycle-end", "Token threshold exceeded: 36.0%"], hermetic_env, proj)
    assert (close.returncode, close.stdout) == (
        0,
        "Cycle 1 closed: Token threshold exceeded: 36.0%\n",
    )
    both = step(["--complete", "3", "--desc", "x", "--tokens", "0", "--cycle-end", "task done"],
                hermetic_env, proj)  # fmt: skip
    assert both.stdout.splitlines()[1] == "Cycle 2 closed: task done"
    log = (proj / ".unattended" / "run.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in log] == [
        "Step 2 completed: Tokens: 0.6%; Status: OK, updated — parser done",
        "Cycle 1 closed: Token threshold exceeded: 36.0%",
        "Step 3 completed: Tokens: 0.0%; Status: OK, updated — x",
        "Cycle 2 closed: task done",
    ]
    closes = [s for s in read_steps(RunPaths(proj), None) if "cycle_end" in s]
    assert [(c["cycle"], c["cycle_end"]) for c in closes] == [
        (1, "Token threshold exceeded: 36.0%"),
        (2, "task done"),
    ]
    inside = {**hermetic_env, "UNATTENDED_PROJECT": str(proj), "UNATTENDED_ITERATION": "9"}
    assert (
        step(["--cycle-end", "handed off"], inside, proj).stdout == "Cycle 9 closed: handed off\n"
    )
    for bad in (["--cycle-end", "  "], ["--desc", "only"], []):
        refused = step(bad, hermetic_env, proj)
        assert refused.returncode == 2 and refused.stderr.startswith("unattended: ")
