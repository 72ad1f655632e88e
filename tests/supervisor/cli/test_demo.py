"""`unattended demo`, as a newcomer runs it: no Claude account, the real daemon, a stub worker."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_the_demo_runs_without_any_credential(hermetic_env: dict[str, str], tmp_path: Path):
    env = {k: v for k, v in hermetic_env.items() if k != "ANTHROPIC_API_KEY"}
    env["TMPDIR"] = str(tmp_path)  # the throwaway repository goes here
    done = run_cli(["demo", "--steps", "2"], env, cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the run ended done: the worker reported UNATTENDED_DONE" in done.stdout
    assert "commits made by the workers:" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
