"""``unattended budget``: exact lines, boundaries, exit codes, and the ledger under contention."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

OK_LINE = "✅ Token budget OK: 25.0% (remaining: 10.0%) - 50,000/70,000 tokens"
EXCEEDED_LINE = "❌ Token threshold exceeded: 40.0% (max: 35%) - 80,000/70,000 tokens"


@pytest.fixture
def env(hermetic_env: dict[str, str]) -> dict[str, str]:
    return hermetic_env


def budget(args: list[str], env: dict, cwd: Path | None = None):  # noqa: ANN201
    return run_cli(["budget", *args], env, cwd=cwd)


def test_check_exact_lines(env: dict) -> None:
    ok = budget(["check", "50000"], env)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, OK_LINE + "\n", "")
    bad = budget(["check", "80000"], env)
    assert (bad.returncode, bad.stdout, bad.stderr) == (1, EXCEEDED_LINE + "\n", "")


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["70000"], 0, "✅ Token budget OK: 35.0% (remaining: 0.0%) - 70,000/70,000 tokens"),
        (["70001"], 1, "❌ Token threshold exceeded: 35.0% (max: 35%) - 70,001/70,000 tokens"),
        (["0"], 0, "✅ Token budget OK: 0.0% (remaining: 35.0%) - 0/70,000 tokens"),
        (["40000", "--threshold", "20"], 0, "✅ Token budget OK: 20.0% (remaining: 0.0%) - "
         "40,000/40,000 tokens"),
        (["190001", "--threshold", "95"], 1, "❌ Token threshold exceeded: 95.0% (max: 95%) - "
         "190,001/190,000 tokens"),
        (["500", "--budget", "1000", "--threshold", "50"], 0,
         "✅ Token budget OK: 50.0% (remaining: 0.0%) - 500/500 tokens"),
    ],
)  # fmt: skip
def test_check_boundaries(env: dict, args: list[str], code: int, line: str) -> None:
    proc = budget(["check", *args], env)
    assert (proc.returncode, proc.stdout.rstrip("\n")) == (code, line)


@pytest.mark.parametrize("threshold", ["19", "96", "19.99", "95.01"])
def test_threshold_outside_20_to_95_is_refused(env: dict, threshold: str) -> None:
    proc = budget(["check", "100", "--threshold", threshold], env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("unattended: threshold must be between 20 and 95 percent")
    assert len(proc.stderr.splitlines()) == 1


def test_check_json(env: dict) -> None:
    proc = budget(["check", "70001", "--json"], env)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc == {
        "can_proceed": False,
        "current_tokens": 70001,
        "current_percent": 35.0,
        "threshold_percent": 35.0,
        "threshold_tokens": 70000,
        "message": "❌ Token threshold exceeded: 35.0% (max: 35%) - 70,001/70,000 tokens",
    }
    ok = json.loads(budget(["check", "50000", "--json"], env).stdout)
    assert (ok["can_proceed"], ok["message"]) == (True, OK_LINE)


def test_check_bad_budget(env: dict) -> None:
    proc = budget(["check", "5", "--budget", "0"], env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("unattended: budget must be a positive number")


def test_check_without_tokens_outside_a_worker(env: dict) -> None:
    proc = budget(["check"], env)
    assert proc.returncode == 2
    assert proc.stderr == (
        "unattended: pass TOKENS: not inside an unattended worker, so there is no live "
        "context reading\n"
    )


def _meter(state_dir: Path, tokens: int, window: int, iteration: str | None = "4") -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    reading = {"tokens": tokens, "percent": round(tokens / window * 100, 1), "band": "normal",
               "window": window, "session_id": "s", "iteration": iteration}  # fmt: skip
    doc = {"schema_version": 1, "readings": 1, "failures": 0, "last_reading": reading}
    (state_dir / "context-meter.json").write_text(json.dumps(doc))


def test_check_uses_the_live_reading_inside_a_worker(env: dict, tmp_path: Path) -> None:
    project = tmp_path / "p"
    worker = {**env, "UNATTENDED_PROJECT": str(project), "UNATTENDED_ITERATION": "4"}
    proc = budget(["check"], worker)
    assert proc.returncode == 2
    assert "the context meter has not produced a reading" in proc.stderr
    _meter(project / ".unattended", 50_000, 200_000)
    proc = budget(["check"], worker)
    assert (proc.returncode, proc.stdout.strip()) == (0, OK_LINE)
    _meter(project / ".unattended", 80_000, 200_000)
    assert budget(["check"], worker).stdout.strip() == EXCEEDED_LINE
    # A 1M-token model: the budget defaults to the reading's window; --budget still wins.
    _meter(project / ".unattended", 80_000, 1_000_000)
    assert budget(["check"], worker).stdout.strip() == (
        "✅ Token budget OK: 8.0% (remaining: 27.0%) - 80,000/350,000 tokens"
    )
    assert budget(["check", "--budget", "200000"], worker).returncode == 1
    # A reading left over from another iteration is not this worker's.
    _meter(project / ".unattended", 10, 200_000, iteration="3")
    proc = budget(["check"], worker)
    assert proc.returncode == 2
    assert "from iteration 3, not this one (4)" in proc.stderr


def test_ledger_flow(env: dict, tmp_path: Path) -> None:
    p = ["--project", str(tmp_path)]
    init = budget(["init", "--budget", "100000", *p], env)
    assert init.returncode == 0
    ledger_file = tmp_path / ".unattended" / "budget.json"
    assert init.stdout == f"Budget ledger ready: 100,000 tokens ({ledger_file})\n"
    assert ledger_file.stat().st_mode & 0o777 == 0o600
    r = budget(["reserve", "50000", "--label", "tests", *p], env)
    assert (r.returncode, r.stdout) == (
        0,
        "✅ Reserved 50,000 tokens for tests: used 0 + reserved 50,000 of 100,000 tokens (50.0%)\n",
    )
    # 50,000 + 44,999 = 94,999 < 95,000: granted; one more token would reach 95 %.
    assert budget(["reserve", "44999", *p], env).returncode == 0
    refused = budget(["reserve", "1", *p], env)
    assert (refused.returncode, refused.stdout) == (
        1,
        "❌ Cannot reserve 1 tokens for unlabelled: used 0 + reserved 94,999 + 1 = 95,000 "
        "would reach 95% of the 100,000-token budget\n",
    )
    rec = budget(["record", "60000", "--label", "tests", *p], env)
    assert rec.stdout == (
        "Recorded 60,000 tokens for tests (released 50,000 reserved): used 60,000 + reserved "
        "44,999 of 100,000 tokens (105.0%)\n"
        "budget stop: tokens at 105% (104,999 of 100,000 tokens)\n"
    )
    report = json.loads(budget(["report", "--json", *p], env).stdout)
    assert report["budget"] == 100_000
    assert (report["used"], report["reserved"], report["available"]) == (60_000, 44_999, 0)
    assert (report["utilization"], report["alert_level"]) == (105.0, "stop")
    assert report["labels"] == {
        "tests": {"used": 60_000, "reserved": 0},
        "unlabelled": {"used": 0, "reserved": 44_999},
    }
    human = budget(["report", *p], env).stdout
    assert "utilization  105.0% (alert level: stop)" in human
    assert "  tests       used 60,000  reserved 0" in human
    reset = budget(["reset", *p], env)
    assert reset.stdout == "Budget ledger reset: used 0 + reserved 0 of 100,000 tokens (0.0%)\n"
    after = json.loads(ledger_file.read_text())
    assert (after["schema_version"], after["budget"], after["used"]) == (1, 100_000, 0)
    assert (after["reserved"], after["labels"]) == (0, {})


@pytest.mark.parametrize(
    ("used", "level"), [(79_999, "ok"), (80_000, "warn"), (90_000, "critical"), (95_000, "stop")]
)
def test_report_alert_levels(env: dict, tmp_path: Path, used: int, level: str) -> None:
    p = ["--project", str(tmp_path)]
    assert budget(["init", "--budget", "100000", *p], env).returncode == 0
    assert budget(["record", str(used), *p], env).returncode == 0
    assert json.loads(budget(["report", "--json", *p], env).stdout)["alert_level"] == level


def test_defaults_without_init(env: dict, tmp_path: Path) -> None:
    report = json.loads(budget(["report", "--json"], env, cwd=tmp_path).stdout)
    assert (report["budget"], report["used"], report["alert_level"]) == (200_000, 0, "ok")
    assert not (tmp_path / ".unattended" / "budget.json").exists()  # report writes nothing
    assert budget(["reserve", "189999"], env, cwd=tmp_path).returncode == 0
    assert budget(["reserve", "1"], env, cwd=tmp_path).returncode == 1


def test_bad_ledger_and_bad_amounts(env: dict, tmp_path: Path) -> None:
    p = ["--project", str(tmp_path)]
    (tmp_path / ".unattended").mkdir()
    (tmp_path / ".unattended" / "budget.json").write_text("{broken")
    proc = budget(["reserve", "5", *p], env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("unattended: ")
    assert "budget.json is not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert budget(["init", *p], env).returncode == 0  # init replaces a broken ledger
    assert budget(["reserve", "--", "-5", *p], env).returncode == 2
    assert budget(["init", "--budget", "0", *p], env).returncode == 2
    missing = budget(["report", "--project", str(tmp_path / "nope")], env)
    assert missing.returncode == 2
    assert missing.stderr.startswith("unattended: project directory not found")


def test_ten_parallel_reserve_calls_never_over_reserve(env: dict, tmp_path: Path) -> None:
    """Ten real `unattended budget reserve` processes race for room for nine."""
    p = ["--project", str(tmp_path)]
    assert budget(["init", "--budget", "100000", *p], env).returncode == 0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "unattended",
                "budget",
                "reserve",
                "10000",
                "--label",
                f"w{i}",
                *p,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        for i in range(10)
    ]
    results = [(p.wait(timeout=60), p.communicate()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0] * 9 + [1], results
    ledger = json.loads((tmp_path / ".unattended" / "budget.json").read_text())
    assert ledger["reserved"] == 90_000
    assert sum(v["reserved"] for v in ledger["labels"].values()) == 90_000


def test_ledger_lock_under_heavy_contention(tmp_path: Path, env: dict) -> None:
    """Eight processes each try 30 one-token reservations against a 100-token budget: exactly
    94 are granted (used + reserved + 1 must stay below 95) and no update is lost."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from contracts.paths import RunPaths\n"
        "from unattended.supervisor.records import ledger\n"
        "paths = RunPaths(Path(sys.argv[1]))\n"
        "print(sum(ledger.reserve(paths, 1, 'x').granted for _ in range(30)))\n"
    )
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.records import ledger

    ledger.init(RunPaths(tmp_path), 100)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
        )  # fmt: skip
        for _ in range(8)
    ]
    granted = sum(int(p.communicate(timeout=120)[0]) for p in procs)
    assert granted == 94
    final = ledger.load(RunPaths(tmp_path))
    assert final is not None
    assert (final.reserved, final.labels["x"].reserved) == (94, 94)


def test_default_budget_agrees_with_safety() -> None:
    from unattended.contracts.budget import DEFAULT_BUDGET
    from unattended.safety import budget as rules

    assert DEFAULT_BUDGET == rules.DEFAULT_BUDGET


def test_seed_details_of_the_ledger(env: dict, tmp_path: Path) -> None:
    """init --model, check against the ledger's budget, record --done, the alert lines, --json
    on every ledger command (issue 14: the seeds' protocol, item 4)."""
    p = ["--project", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], env=env, check=True)  # records: .git
    init = budget(["init", "--model", "claude-opus-4-8[1m]", "--json", *p], env)
    assert json.loads(init.stdout)["budget"] == 1_000_000
    assert budget(["init", "--model", "gpt-4", *p], env).returncode == 2
    assert budget(["init", "--budget", "1000", *p], env).returncode == 0
    # check uses the ledger's budget (was: 990/70,000 tokens of the default 200,000)
    check = budget(["check", "990"], env, cwd=tmp_path)
    assert check.returncode == 1 and check.stdout.strip().endswith("- 990/350 tokens")
    sub = tmp_path / "src"
    sub.mkdir()  # from a subdirectory of the work tree: the same ledger
    assert budget(["check", "300", "--threshold", "35"], env, cwd=sub).stdout.strip() == (
        "✅ Token budget OK: 30.0% (remaining: 5.0%) - 300/350 tokens"
    )
    assert budget(["check", "300", "--budget", "200000"], env, cwd=sub).returncode == 0

    assert budget(["init", "--budget", "10000", *p], env).returncode == 0
    reserve = budget(["reserve", "5000", "--label", "s1", *p], env)
    assert reserve.stdout.splitlines()[1:] == []  # 50 %: no level crossed
    done = budget(["record", "3000", "--label", "s1", "--done", "--json", *p], env)
    doc = json.loads(done.stdout)  # one JSON document, nothing else
    assert (doc["released"], doc["reserved"], doc["used"]) == (5000, 0, 3000)
    assert doc["labels"]["s1"] == {"used": 3000, "reserved": 0}
    # plain record keeps its contract: releases only up to N
    assert budget(["reserve", "4000", "--label", "s2", *p], env).returncode == 0
    plain = budget(["record", "1000", "--label", "s2", *p], env)
    assert "(released 1,000 reserved)" in plain.stdout
    crossing = budget(["reserve", "2000", "--label", "s3", *p], env)
    assert crossing.stdout.splitlines()[-1] == (
        "budget critical: tokens at 90% (9,000 of 10,000 tokens)"
    )
    reserve_json = json.loads(budget(["reserve", "100", "--json", *p], env).stdout)
    assert reserve_json["granted"] is True and reserve_json["alert"] is None
    reset = json.loads(budget(["reset", "--json", *p], env).stdout)
    assert (reset["used"], reset["reserved"]) == (0, 0)
