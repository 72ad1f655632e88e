"""The seeing commands on what the real daemon wrote: two foreground runs with the fake claude,
then metrics, report, watch and advise read the files back. This is where a drift between the
daemon's formats and the readers would show."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli
from tests.fakes.claude_fixture import FakeClaude

FAST = ["--grace-seconds", "1", "--allowed-tools", "Bash,Write", "--max-cost-usd", "5"]
BLOCK_MATPLOTLIB = (
    "import sys; sys.modules['matplotlib'] = None; "
    "from unattended.supervisor.cli.entry import main; raise SystemExit(main(sys.argv[1:]))"
)


def foreground(project: Path, env: dict[str, str]) -> None:
    done = run_cli(["start", "--foreground", *FAST], env, cwd=project, timeout=120)
    assert done.returncode in (0, 4), done.stdout + done.stderr  # done / blocked


def test_views_read_what_the_daemon_wrote(
    project: Path, hermetic_env: dict[str, str], fake_claude: FakeClaude, tmp_path: Path
):
    commit = {"do": "commit", "file": "work.txt"}
    fake_claude.script([[{**commit, "message": "first run: the only step"}, "done"]])
    foreground(project, hermetic_env)
    fake_claude.script(
        [
            [{**commit, "message": "second run: step one"}, "text"],
            [{**commit, "message": "second run: step two"}, "text"],
            [{"do": "blocked", "reason": "I need the staging database password"}],
        ]
    )
    foreground(project, hermetic_env)

    done = run_cli(
        ["metrics", "--project", str(project), "--json", "--by", "run", "--halts"], hermetic_env
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["runs"] == 2 and data["bad_lines"] == 0
    assert [g["iterations"] for g in data["groups"]] == [1, 3]
    assert [g["commits"] for g in data["groups"]] == [1, 2]
    assert [h["status"] for h in data["halts"]] == ["done", "blocked"]
    assert data["totals"]["cost_usd"] > 0

    out_dir = tmp_path / "report"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_MATPLOTLIB,
            "report",
            "--project",
            str(project),
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
    assert "**blocked after 3 iteration(s) in " in text
    assert ", 2 commit(s), 1 file(s) changed**" in text
    assert "Prompt from PROMPT.md:\n\n```text\nFix the tests; commit each fix.\n```" in text
    assert "` second run: step one\n- `" in text and "` second run: step two\n" in text
    assert "first run: the only step" not in text  # the previous run's commit
    assert "- M `work.txt`" in text
    assert "I need the staging database password" in text.split("## Blockers and questions")[1]

    done = run_cli(["watch", "--project", str(project)], hermetic_env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "status    blocked (daemon exited)   iteration 3 of 200"
    assert "commits   2" in lines
    assert any("run ended blocked" in ln for ln in lines[-10:])

    done = run_cli(["advise", "--project", str(project), "--json"], hermetic_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["iterations"] == 4
