"""Issue 13 §8: every command that reads a file, run (in this process) over damaged versions of
it: one line and exit 2 when it refuses, never an exception escaping (a traceback for the user).

The cases come from tests/fuzzing.py through hypothesis; ``python -m tests.fuzz_count`` runs
the same cases with fixed seeds and counts the crashes (the issue's before/after figures).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzz_count as fc
from unattended.contracts.paths import RunPaths

FUZZ = settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("case", fc.FILES, ids=[case.name for case in fc.FILES])
@FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_no_command_crashes_on_a_damaged_file(
    case: fc.FileCase, rng: random.Random, tmp_path: Path
) -> None:
    assert fc.crashes_for(case, rng, tmp_path) == []


VALID_STATE = fc.fz.valid_state("/p").encode()
BAD_STATES = {
    "not UTF-8": b'{"schema_version": 1, "run_id": "\xff\xfe"}',
    "truncated": VALID_STATE[: len(VALID_STATE) // 2],
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "a path for a run id": VALID_STATE.replace(b"20261123T031209Z", b"../.."),
}
REFUSING = [
    ["status", "--project", fc.P],
    ["status", "--project", fc.P, "--json"],
    ["stop", "--project", fc.P],
    ["extend", "--project", fc.P, "--hours", "2"],
    ["start", "--project", fc.P, "--resume", "--dry-run"],
]


@pytest.mark.parametrize("bad", BAD_STATES, ids=list(BAD_STATES))
def test_an_unreadable_state_is_one_line_naming_it_and_what_to_do(bad: str, tmp_path: Path):
    from unattended.contracts.state import STATE_HINT

    project, home = fc.make_project(tmp_path)
    state = RunPaths(project).state
    for args in REFUSING:
        state.write_bytes(BAD_STATES[bad])
        result = fc.run_command([a.format(project=project) for a in args], fc.env_for(home))
        assert result.crash is None, (args, result.crash)
        assert result.code == 2, (args, result.out, result.err)
        assert result.err.startswith(
            f"unattended: {'cannot resume: ' if '--resume' in args else ''}{state}"
        )
        assert result.err.rstrip().endswith(STATE_HINT) and result.err.count("\n") == 1
    # The views that only look keep going, and say which file they could not read.
    for args in (["metrics", "--project", fc.P], ["advise", "--project", fc.P]):
        result = fc.run_command([a.format(project=project) for a in args], fc.env_for(home))
        assert result.code == 0 and result.err.startswith(f"unattended: warning: {state}")


def test_start_archives_an_unreadable_state_and_begins_anew(tmp_path: Path) -> None:
    """A plain start never refuses forever: the unreadable state goes to runs/unknown-<ts>/."""
    from unattended.contracts.paths import RunPaths
    from unattended.contracts.settings import Settings
    from unattended.supervisor.run.begin import begin_run

    project, home = fc.make_project(tmp_path)
    paths = RunPaths(project)
    for bad in BAD_STATES.values():
        paths.state.write_bytes(bad)
        with mock.patch.dict(os.environ, fc.env_for(home)):
            started = begin_run(paths, Settings(), {}, resume=False)
        assert not started.resumed and "previous run archived to " in started.note
        archived = [p / "state.json" for p in paths.runs.iterdir()]
        assert bad in [p.read_bytes() for p in archived if p.exists()]
        assert not paths.state.exists()  # the daemon writes the new run's state next
    assert all(p.name.startswith("unknown-") for p in paths.runs.iterdir())
