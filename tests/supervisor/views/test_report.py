"""`unattended report` on a recorded night: report.md against the expected text, valid PNGs,
and the path without matplotlib (a note, exit 0)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.supervisor.views.recorded import OLD_RUN, RUN, Recorded

EXPECTED = """\
# Run report: names (20261123T010000Z)

**blocked after 6 iteration(s) in 1h22m, $2.54, 5 commit(s), 4 file(s) changed**

## What was asked

Prompt from PROMPT.md:

```text
Make name matching Unicode-aware.
- Normalise names before comparing.
- Cover NFC and NFD in the tests.
- Write a migration for existing rows.
Commit each step.
```

## How it ended

- Status: blocked (exit 4)
- Why: the worker is blocked: needs the staging database password to run the migration
- Started 2026-11-23 01:00:00Z, last activity 2026-11-23 02:22:12Z, deadline 2026-11-23 09:00:00Z
- Iterations: 6 of at most 200

## Commits

`git log {base}..{tip}`: 5 commit(s)

- `{c0}` tests: add failing case for unicode names
- `{c1}` names: normalise unicode before comparing
- `{c2}` names: cover NFC and NFD
- `{c3}` names: document normalisation
- `{c4}` names: stage migration script

## Files changed

- A `docs/names.md`
- A `scripts/migrate.py`
- A `src/names.py`
- A `tests/test_names.py`

## Blockers and questions

- iteration 5: the worker ended by asking a question (nobody is there to answer); no change
- iteration 5: permission denied for Bash (2 call(s))
- iteration 6: the worker is blocked: needs the staging database password to run the migration

## Handoff notes

From iteration 3:

> # Handoff
> - Normalisation is done in src/names.py (NFC everywhere).
> - Next: scripts/migrate.py needs the staging database to run.

## Cost

- Cost: $2.54 of the $10.00 cap (25 %)
- Tokens: 215,300 (input 5,800, output 35,500, cache write 174,000); cache reads 1,460,000
- Per iteration: $0.42 and 35.9k tokens on average

## Iterations

| # | outcome | time | cost | commits | context | session |
|---:|---|---:|---:|---:|---|---|
| 1 | progress | 5m00s | $0.52 | 1 | 46 % normal | fresh |
| 2 | progress | 7m00s | $0.31 | 2 | 73 % warn | resumed |
| 3 | progress | 4m20s | $0.44 | 1 | 88 % stop | resumed, handoff |
| 4 | timeout | 1h00m | $0.95 | 0 | 60 % normal | fresh |
| 5 | no-progress | 3m00s | $0.12 | 0 | 25 % normal | fresh |
| 6 | blocked | 2m20s | $0.20 | 1 | 30 % normal | fresh |

## Charts

{charts}
"""
CHARTS = """\
![tokens cost](tokens_cost.png)
![cumulative cost](cumulative_cost.png)
![durations](durations.png)"""
NO_CHARTS = (
    "Charts need matplotlib: install the `report` extra (`pipx install 'unattended[report]'`, "
    "or `pip install matplotlib` in unattended's environment)."
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def expected(rec: Recorded, charts: str) -> str:
    shas = {f"c{i}": sha[:12] for i, (sha, _) in enumerate(rec.current.commits)}
    return EXPECTED.format(
        base=rec.current.heads[0][:12], tip=rec.current.heads[-1][:12], charts=charts, **shas
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_markdown_and_charts(recorded: Recorded, hermetic_env: dict[str, str]):
    pytest.importorskip("matplotlib", reason="charts need matplotlib (the report extra)")
    done = run_cli(["report", "--project", str(recorded.project)], hermetic_env, timeout=120)
    assert done.returncode == 0, done.stderr
    out_dir = recorded.project / ".unattended" / "reports" / RUN
    assert done.stdout == f"wrote {out_dir / 'report.md'} (project {recorded.project})\n"
    for path in [out_dir, *out_dir.iterdir()]:
        assert path.stat().st_mode & 0o077 == 0, path  # 0700 / 0600, as the README promises
    assert (out_dir.parent.stat().st_mode & 0o077) == 0
    assert (out_dir / "report.md").read_text() == expected(recorded, CHARTS)
    for name in ("tokens_cost.png", "cumulative_cost.png", "durations.png"):
        width, height = png_size(out_dir / name)
        assert width > 200 and height > 200, (name, width, height)


BLOCK_MATPLOTLIB = (
    "import sys; sys.modules['matplotlib'] = None; "
    "from unattended.supervisor.cli.entry import main; raise SystemExit(main(sys.argv[1:]))"
)


def test_report_without_matplotlib(recorded: Recorded, hermetic_env: dict[str, str], tmp_path):
    out_dir = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_MATPLOTLIB,
            "report",
            "--project",
            str(recorded.project),
            "--out",
            str(out_dir),
        ],
        env=hermetic_env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out_dir / 'report.md'} (project ")
    assert done.stdout.endswith(f")\n{NO_CHARTS}\n")
    assert (out_dir / "report.md").read_text() == expected(recorded, NO_CHARTS)
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.md"]


def test_report_of_archived_run(recorded: Recorded, hermetic_env: dict[str, str], tmp_path):
    out_dir = tmp_path / "old"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_MATPLOTLIB,
            "report",
            "--project",
            str(recorded.project),
            "--run",
            OLD_RUN,
            "--out",
            str(out_dir),
        ],
        env=hermetic_env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    text = (out_dir / "report.md").read_text()
    assert text.startswith(
        f"# Run report: names ({OLD_RUN})\n\n**capped after 3 iteration(s) in 1h25m, $2.13, "
        "2 commit(s), 2 file(s) changed**\n"
    )
    assert "- Why: hours cap reached (deadline 2026-11-22T03:00:00Z)" in text
    assert "## Blockers and questions\n\nNone raised.\n" in text
    assert "## Handoff notes\n\nNone written.\n" in text
    assert "- Cost: $2.13 (no cost cap)" in text


def test_report_errors(tmp_path: Path, hermetic_env: dict[str, str], recorded: Recorded):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_cli(["report", "--project", str(empty)], hermetic_env)
    assert done.returncode == 1
    assert done.stderr.startswith("unattended: no run yet in ")
    done = run_cli(["report", "--project", str(recorded.project), "--run", "nope"], hermetic_env)
    assert done.returncode == 1
    assert done.stderr.startswith("unattended: no run 'nope' in ")
    assert "Traceback" not in done.stderr


def test_steps_section(recorded: Recorded, hermetic_env: dict[str, str], tmp_path: Path):
    from unattended.contracts.telemetry import TelemetryLine

    if "steps" not in TelemetryLine.model_fields:
        pytest.skip("telemetry has no steps field yet")
    tele = recorded.current.root / "telemetry.jsonl"
    lines = tele.read_text().splitlines()
    first = json.loads(lines[0])
    first["steps"] = [
        {"step": 1, "desc": "failing test for NFD names", "status": "OK"},
        {"step": 2, "desc": "normalise in compare()", "status": "NOK"},
    ]
    tele.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_MATPLOTLIB,
            "report",
            "--project",
            str(recorded.project),
            "--out",
            str(tmp_path / "out"),
        ],
        env=hermetic_env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out" / "report.md").read_text()
    assert (
        "## Steps reported\n\n"
        "- iteration 1, step 1: failing test for NFD names (OK)\n"
        "- iteration 1, step 2: normalise in compare() (NOK)\n\n## Cost\n"
    ) in text


def test_caps_say_when_the_cli_and_the_published_price_differ() -> None:
    from types import SimpleNamespace

    from unattended.supervisor.views.metrics import Group
    from unattended.supervisor.views.report import _caps

    # The CLI priced claude-sonnet-4-6 at Opus rates: its figure is the larger, and counts.
    totals = Group("total", iterations=2, cost_usd=1.25, cost_usd_cli=1.25, cost_usd_priced=0.75)
    lines = _caps(SimpleNamespace(settings={"max_cost_usd": 5.0}, totals=totals))
    assert lines[:2] == [
        "- Cost: $1.25 of the $5.00 cap (25 %)",
        "- The CLI reported $1.25, published prices give $0.75: the larger of the two per "
        "iteration is what counts",
    ]
    same = Group("total", iterations=1, cost_usd=0.5, cost_usd_cli=0.5, cost_usd_priced=0.5)
    assert len(_caps(SimpleNamespace(settings={}, totals=same))) == 3  # no such line
