"""`unattended metrics` on a recorded night: tables and JSON from real files, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.supervisor.views.recorded import ITERS, OLD_ITERS, OLD_RUN, RUN, Recorded


def metrics(project: Path, env: dict[str, str], *args: str) -> str:
    done = run_cli(["metrics", "--project", str(project), *args], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_json_groups_by_run_with_sessions(recorded: Recorded, hermetic_env: dict[str, str]):
    data = json.loads(metrics(recorded.project, hermetic_env, "--json"))
    assert data["runs"] == 2 and data["bad_lines"] == 0
    assert data["by"] == "run"
    assert [g["key"] for g in data["groups"]] == [OLD_RUN, RUN]
    cur = data["groups"][1]
    assert cur["iterations"] == 6
    assert cur["cost_usd"] == round(sum(i.cost for i in ITERS), 6)
    assert cur["input_tokens"] == sum(i.tokens[0] for i in ITERS)
    assert cur["cache_read_tokens"] == sum(i.tokens[3] for i in ITERS)
    assert cur["tokens"] == sum(i.tokens[0] + i.tokens[1] + i.tokens[2] for i in ITERS)
    assert cur["duration_s"] == sum(i.duration_s for i in ITERS)
    assert cur["commits"] == 5
    assert cur["outcomes"] == {"blocked": 1, "no-progress": 1, "progress": 3, "timeout": 1}
    sessions = {g["key"]: g for g in data["sessions"]}
    assert sessions["resumed"]["iterations"] == 4 and sessions["fresh"]["iterations"] == 5
    all_iters = ITERS + OLD_ITERS
    assert data["totals"]["iterations"] == 9
    assert abs(data["totals"]["cost_usd"] - sum(i.cost for i in all_iters)) < 1e-9
    assert "halts" not in data and "context" not in data


def test_table_by_model_outcome_and_day(recorded: Recorded, hermetic_env: dict[str, str]):
    out = metrics(recorded.project, hermetic_env, "--by", "model")
    lines = out.splitlines()
    assert lines[0] == "2 run(s), 9 iteration(s), 357.8k tokens (+2.27M cache read), $4.67"
    header = next(ln for ln in lines if ln.startswith("model"))
    assert header.split() == [
        "model",
        "iters",
        "tokens",
        "cache",
        "read",
        "cost",
        "$/iter",
        "time",
        "time/iter",
    ]
    opus = next(ln for ln in lines if ln.startswith("claude-opus-4-8"))
    assert opus.split() == [
        "claude-opus-4-8",
        "6",
        "215.3k",
        "1.46M",
        "$2.54",
        "$0.42",
        "1h21m",
        "13m37s",
    ]
    sonnet = next(ln for ln in lines if ln.startswith("claude-sonnet-4-6"))
    assert sonnet.split()[1:5] == ["3", "142.5k", "810.0k", "$2.13"]
    assert "session" not in out  # sessions table only in the default view

    by_outcome = json.loads(metrics(recorded.project, hermetic_env, "--by", "outcome", "--json"))
    counts = {g["key"]: g["iterations"] for g in by_outcome["groups"]}
    assert counts == {"progress": 5, "timeout": 2, "no-progress": 1, "blocked": 1}
    assert by_outcome["groups"][0]["key"] == "progress"  # most frequent first

    by_day = json.loads(metrics(recorded.project, hermetic_env, "--by", "day", "--json"))
    assert [(g["key"], g["iterations"]) for g in by_day["groups"]] == [
        ("2026-11-22", 3),
        ("2026-11-23", 6),
    ]


def test_halts_and_context(recorded: Recorded, hermetic_env: dict[str, str]):
    out = metrics(recorded.project, hermetic_env, "--halts", "--context")
    assert (
        "capped       3  $2.13             hours cap reached (deadline 2026-11-22T03:00:00Z)" in out
    )
    # The iteration at 88 % was compacted by the CLI: a defect signal, counted per run.
    assert "blocked      6  $2.54          1  the worker is blocked: needs the staging" in out
    assert "context bands: normal 6, warn 2, stop 1" in out
    row = next(ln for ln in out.splitlines() if ln.startswith(RUN) and " 88%" in ln)
    assert row.split() == [RUN, "3", "176.0k", "88%", "stop", "yes", "resumed"]
    assert "$/iter" not in out  # only the sections asked for

    data = json.loads(metrics(recorded.project, hermetic_env, "--halts", "--context", "--json"))
    assert [(h["run_id"], h["status"], h["exit_code"]) for h in data["halts"]] == [
        (OLD_RUN, "capped", 3),
        (RUN, "blocked", 4),
    ]
    assert [
        (h["compactions"], h["compacted_iterations"], h["cli_version"]) for h in data["halts"]
    ] == [
        (0, [], "2.1.197"),
        (1, [3], "2.1.197"),
    ]
    assert data["context"]["bands"] == {"normal": 6, "warn": 2, "stop": 1}
    assert len(data["context"]["iterations"]) == 9
    assert "groups" not in data


def test_torn_line_and_crashed_archive(recorded: Recorded, hermetic_env: dict[str, str]):
    """A torn last telemetry line is skipped and counted; a non-terminal archived run crashed."""
    tele = recorded.current.root / "telemetry.jsonl"
    tele.write_text(tele.read_text() + '{"schema_version": 1, "time": "2026-11-23T0')
    old_state = recorded.old.root / "state.json"
    raw = json.loads(old_state.read_text())
    raw.update(status="running", stop_reason=None, exit_code=None)
    old_state.write_text(json.dumps(raw))
    data = json.loads(metrics(recorded.project, hermetic_env, "--halts", "--json"))
    assert data["bad_lines"] == 1
    assert data["halts"][0]["status"] == "crashed"
    assert data["totals"]["iterations"] == 9
    out = metrics(recorded.project, hermetic_env)
    assert "(1 unreadable telemetry line(s) skipped)" in out.splitlines()[0]


def test_no_runs_and_bad_by(tmp_path: Path, hermetic_env: dict[str, str]):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert metrics(empty, hermetic_env).startswith("no runs yet in ")
    data = json.loads(metrics(empty, hermetic_env, "--json"))
    assert data["runs"] == 0 and data["groups"] == []
    done = run_cli(["metrics", "--project", str(empty), "--by", "week"], hermetic_env)
    assert done.returncode == 2
    assert done.stderr.startswith("unattended: --by must be one of run, model, outcome, day")
    assert "Traceback" not in done.stderr
