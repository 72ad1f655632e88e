"""`unattended advise`: recommendations with evidence from telemetry across runs, --apply edits
unattended.toml keeping comments, --reject hides one for the next five runs."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import run_cli
from unattended.contracts.paths import RunPaths
from unattended.contracts.state import RunState
from unattended.contracts.telemetry import TelemetryLine
from unattended.supervisor.views.toml_edit import TomlEditError, set_key

TOML = """\
# unattended settings for the names project
hours = 8            # one night
max_cost_usd = 20    # never more than this

# worker_timeout = 1200   (tried, too short)
worker_timeout = 3600  # an hour per worker
prompt_file = "PROMPT.md"  # steer by editing it; a # in a comment is fine
"""
TOML_AFTER_APPLY = TOML.replace(
    "worker_timeout = 3600  # an hour per worker", "worker_timeout = 5400  # an hour per worker"
)


def write_run(project: Path, index: int, plan: list[dict], settings: dict | None = None) -> str:
    """An archived run under runs/<id>/ with one telemetry line per entry of ``plan``."""
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=index)
    run_id = start.strftime("%Y%m%dT%H%M%SZ")
    root = RunPaths(project).runs / run_id
    root.mkdir(parents=True)
    lines = []
    for n, item in enumerate(plan, 1):
        pct = item.get("pct", 40.0)
        band = "stop" if pct >= 85 else "warn" if pct >= 70 else "normal"
        lines.append(
            TelemetryLine(
                time=start + timedelta(minutes=10 * n),
                run_id=run_id,
                iteration=n,
                model="claude-opus-4-8",
                duration_s=item.get("duration", 600.0),
                outcome=item.get("outcome", "progress"),
                total_cost_usd=item.get("cost", 0.5),
                context_peak_tokens=int(pct * 2000),
                context_window=200000,
                context_pct=pct,
                context_band=band,
                resumed_session=item.get("resumed", False),
                compactions=item.get("compactions", 0),
            ).model_dump_json()
        )
    (root / "telemetry.jsonl").write_text("\n".join(lines) + "\n")
    base = {"worker_timeout": 3600.0, "context_warn_pct": 70.0, "max_cost_usd": 20.0}
    state = RunState(
        run_id=run_id,
        status="done",
        project=str(project),
        started_at=start,
        updated_at=start + timedelta(hours=5),
        deadline=start + timedelta(hours=8),
        iteration=len(plan),
        max_iterations=200,
        exit_code=0,
        stop_reason="done",
        settings={**base, **(settings or {})},
    )
    (root / "state.json").write_text(state.to_json())
    return run_id


def night_runs(project: Path) -> None:
    """26 iterations in 3 runs: 9 reach the stop band, 3 time out, resumed ones 41 % cheaper."""
    fresh = {"cost": 1.0}
    resumed = {"cost": 0.59, "resumed": True}
    stop = {"pct": 88.0}
    plans = [
        [
            fresh,
            {**resumed, **stop},
            resumed,
            {**resumed, **stop},
            {"outcome": "timeout", **fresh},
            fresh,
            {**resumed, **stop},
            resumed,
            fresh,
        ],
        [
            fresh,
            {**resumed, **stop},
            resumed,
            {**fresh, **stop},
            {"outcome": "timeout", **fresh},
            resumed,
            {**resumed, **stop},
            fresh,
        ],
        [
            fresh,
            {**resumed, **stop},
            resumed,
            {**resumed, **stop},
            {"outcome": "timeout", **fresh},
            fresh,
            {**resumed, **stop},
            fresh,
            resumed,
        ],
    ]
    for i, plan in enumerate(plans):
        write_run(project, i, plan)


@pytest.fixture
def advised(project: Path) -> Path:
    (project / "unattended.toml").write_text(TOML)
    night_runs(project)
    return project


def advise(project: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    done = run_cli(["advise", "--project", str(project), *args], env)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, done.stderr


def test_recommendations_with_evidence(advised: Path, hermetic_env: dict[str, str]):
    code, out, err = advise(advised, hermetic_env, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["runs"], doc["iterations"]) == (3, 26)
    recs = {r["id"]: r for r in doc["recommendations"]}
    assert set(recs) == {"context-warn", "worker-timeout", "session-policy"}
    assert recs["context-warn"]["evidence"] == "9 of 26 iterations reached the context stop band"
    assert recs["context-warn"]["action"] == "lower `context_warn_pct` to 60"
    assert recs["worker-timeout"]["evidence"] == "the worker timeout ended 3 of 26 iterations"
    assert recs["worker-timeout"]["value"] == 5400
    assert recs["session-policy"]["evidence"] == (
        "resumed sessions cost 41 % less per iteration than fresh ones"
    )
    assert recs["session-policy"]["action"] == "keep `session_policy = auto`"
    assert recs["session-policy"]["kind"] == "keep"

    code, out, _ = advise(advised, hermetic_env)
    assert out.splitlines()[:5] == [
        "from 26 iteration(s) in 3 run(s): 3 recommendation(s)",
        "",
        "[context-warn] 9 of 26 iterations reached the context stop band",
        "    -> lower `context_warn_pct` to 60 (now 70)",
        "[worker-timeout] the worker timeout ended 3 of 26 iterations",
    ]


def test_a_compaction_by_the_cli_is_a_defect_signal(project: Path, hermetic_env: dict[str, str]):
    write_run(project, 0, [{}, {"pct": 86.0, "compactions": 1}, {}, {}, {}])
    code, out, err = advise(project, hermetic_env, "--json")
    assert code == 0, err
    recs = {r["id"]: r for r in json.loads(out)["recommendations"]}
    assert recs["context-compacted"]["evidence"] == (
        "the CLI compacted the context of 1 of 5 iterations by itself before the handoff"
    )
    assert recs["context-compacted"]["action"] == "lower `context_stop_pct` to 75"


def test_apply_keeps_comments_and_records(advised: Path, hermetic_env: dict[str, str]):
    code, out, err = advise(advised, hermetic_env, "--apply", "worker-timeout")
    assert code == 0, err
    assert out == (
        "unattended.toml: worker_timeout = 5400 (was 3600); takes effect at the next "
        "`unattended start`\n"
    )
    text = (advised / "unattended.toml").read_text()
    assert text == TOML_AFTER_APPLY
    assert tomllib.loads(text)["worker_timeout"] == 5400

    code, out, err = advise(advised, hermetic_env, "--apply", "context-warn")
    assert code == 0, err
    text = (advised / "unattended.toml").read_text()
    assert text == TOML_AFTER_APPLY + "context_warn_pct = 60  # unattended advise: context-warn\n"

    record = json.loads((RunPaths(advised).records / "advice.json").read_text())
    assert [(d["id"], d["action"], d["value"]) for d in record["decisions"]] == [
        ("worker-timeout", "applied", 5400),
        ("context-warn", "applied", 60),
    ]
    # Past runs ran with the old values: they are no evidence against the new ones.
    doc = json.loads(advise(advised, hermetic_env, "--json")[1])
    assert [r["id"] for r in doc["recommendations"]] == ["session-policy"]


def test_reject_hides_for_five_runs(advised: Path, hermetic_env: dict[str, str]):
    code, out, err = advise(advised, hermetic_env, "--reject", "context-warn")
    assert code == 0, err
    assert out == "rejected context-warn: not proposed again for the next 5 runs\n"
    ids = [
        r["id"] for r in json.loads(advise(advised, hermetic_env, "--json")[1])["recommendations"]
    ]
    assert "context-warn" not in ids and "worker-timeout" in ids
    code, out, _ = advise(advised, hermetic_env)
    assert out.splitlines()[-2:] == [
        "(1 rejected or applied recently: context-warn)",
        f"project: {advised.resolve()}",
    ]
    for i in range(4):  # four more runs: still hidden
        write_run(advised, 10 + i, [{"pct": 90.0}, {"pct": 90.0}])
    doc = json.loads(advise(advised, hermetic_env, "--json")[1])
    assert "context-warn" not in [r["id"] for r in doc["recommendations"]]
    assert doc["suppressed"] == ["context-warn"]
    write_run(advised, 20, [{"pct": 90.0}])  # the fifth run: proposed again
    doc = json.loads(advise(advised, hermetic_env, "--json")[1])
    assert "context-warn" in [r["id"] for r in doc["recommendations"]]
    assert (advised / "unattended.toml").read_text() == TOML  # reject never edits


def test_bad_ids_and_no_runs(advised: Path, hermetic_env: dict[str, str], tmp_path: Path):
    code, _, err = advise(advised, hermetic_env, "--apply", "nope")
    assert code == 2
    assert err.startswith("unattended: no recommendation 'nope' (current ones: context-warn, ")
    code, _, err = advise(advised, hermetic_env, "--apply", "a", "--reject", "b")
    assert code == 2 and "exclude each other" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, _ = advise(empty, hermetic_env)
    assert code == 0
    assert out.startswith("no runs yet")


def test_apply_creates_the_file_and_cost_cap(project: Path, hermetic_env: dict[str, str]):
    write_run(project, 0, [{"cost": 2.0}] * 3, settings={"max_cost_usd": None})
    doc = json.loads(advise(project, hermetic_env, "--json")[1])
    cap = next(r for r in doc["recommendations"] if r["id"] == "cost-cap")
    assert cap["evidence"] == "no cost cap is set and the costliest of 1 run(s) cost $6.00"
    assert cap["value"] == 9
    assert not (project / "unattended.toml").exists()
    code, _, err = advise(project, hermetic_env, "--apply", "cost-cap")
    assert code == 0, err
    assert (project / "unattended.toml").read_text() == (
        "max_cost_usd = 9  # unattended advise: cost-cap\n"
    )


# ----- the line editor itself -------------------------------------------------------------


def test_set_key_edits_in_place():
    text = '"hours" = 8 # q\n[table]\nworker_timeout = 1\n'
    assert set_key(text, "hours", 9) == '"hours" = 9 # q\n[table]\nworker_timeout = 1\n'
    # A key under a table is not the top-level key: added before the table.
    added = set_key(text, "worker_timeout", 5400, note="advise")
    assert added == (
        '"hours" = 8 # q\nworker_timeout = 5400  # advise\n\n[table]\nworker_timeout = 1\n'
    )
    assert tomllib.loads(added)["table"]["worker_timeout"] == 1
    assert set_key("a = 1\r\nb = 2\r\n", "c", "x").startswith('a = 1\r\nb = 2\r\nc = "x"')
    assert set_key("a = 1", "b", True) == "a = 1\nb = true\n"
    assert set_key('p = "x # y" # z\n', "p", 'q"r') == 'p = "q\\"r" # z\n'
    assert set_key("f = 1.5\n", "f", 2.25) == "f = 2.25\n"
    assert tomllib.loads(set_key('p = """\nlong\n"""\n', "p", "x"))["p"] == "x"
    assert tomllib.loads(set_key('l = [\n "a",\n]\n', "l", "x"))["l"] == "x"
    with pytest.raises(TomlEditError):
        set_key("t = {a = 1}\n", "t", 2)  # an inline table is not a value to overwrite
    with pytest.raises(TomlEditError):
        set_key("not toml = = 1\n", "a", 1)


def test_set_key_ignores_a_lookalike_line_inside_a_multiline_string():
    """The line editor changed `worker_timeout = 1` inside the prompt and left the key unset."""
    text = 'prompt = """\nworker_timeout = 1\n"""\n'
    parsed = tomllib.loads(set_key(text, "worker_timeout", 5400))
    assert parsed["worker_timeout"] == 5400
    assert parsed["prompt"] == "worker_timeout = 1\n"


def test_tomlkit_only_for_apply(advised: Path, hermetic_env: dict[str, str]):
    import subprocess
    import sys

    def imports(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "unattended", "advise", "--project",
             str(advised), *args], env=hermetic_env, capture_output=True, text=True, timeout=60,
        ).stderr  # fmt: skip

    assert "tomlkit" not in imports()
    assert "tomlkit" in imports("--apply", "worker-timeout")
