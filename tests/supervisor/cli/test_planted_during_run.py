"""A worker plants symlinks where the daemon writes, mid-run: into the records (telemetry) and
over the run.log copy in ``.unattended/``. Each write is refused and said once in run.log, the
files they point to stay untouched, and the run goes on to its verdict (issue 13 item 1)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.daemon.scenario import foreground
from unattended.contracts.paths import RunPaths

PRECIOUS = "precious\n"


def test_symlinks_planted_by_a_worker_are_refused_and_logged(
    tmp_path: Path, project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    paths = RunPaths(project)
    victims = [tmp_path / "victim-telemetry", tmp_path / "victim-log"]
    for victim in victims:
        victim.write_text(PRECIOUS)
    plant = (
        f"rm -f {paths.telemetry} && ln -s {victims[0]} {paths.telemetry} && "
        f"rm -f {paths.run_log_view} && ln -s {victims[1]} {paths.run_log_view}"
    )
    fake_claude.script([["commit", {"do": "run", "cmd": plant}, "text"], ["commit", "done"]])
    proc = foreground(project, hermetic_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert [v.read_text() for v in victims] == [PRECIOUS, PRECIOUS]
    assert json.loads(paths.state.read_text())["status"] == "done"
    log = paths.run_log.read_text().splitlines()
    refused = [line for line in log if "refused to write" in line]
    assert len(refused) == 2, refused
    assert any(str(paths.telemetry) in line for line in refused)
    assert any(str(paths.run_log_view) in line for line in refused)
    assert all("symlink" in line for line in refused)
    assert paths.telemetry.is_symlink() and paths.run_log_view.is_symlink()  # left for the user
