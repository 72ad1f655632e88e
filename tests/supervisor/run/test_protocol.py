"""The seeds' token protocol inside the worker: what the prompt tells it, that the commands it
names are reachable, and the cycle line (issue 14, "The seeds' protocol")."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from unattended.supervisor.run.iteration import worker_env
from unattended.supervisor.run.prompt import PROTOCOL, build_prompt

PROTOCOL_BEFORE_ISSUE_14 = 698  # characters


def test_protocol_names_the_budget_commands_briefly() -> None:
    assert "`unattended budget check`" in PROTOCOL
    assert '`unattended step --complete N --desc "<what it did>"`' in PROTOCOL
    assert "reads your tokens itself" in PROTOCOL  # the model never types its token count
    # Short: about 60 tokens more than before (930 characters, from 698).
    assert len(PROTOCOL) <= PROTOCOL_BEFORE_ISSUE_14 + 240
    prompt = build_prompt("Fix the tests.")
    assert prompt.startswith("Fix the tests.\n") and PROTOCOL in prompt


def test_the_cli_is_reachable_from_the_worker(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = worker_env({"PATH": str(empty)}, tmp_path, "r1", 1)
    bin_dir = str(Path(sys.executable).parent)
    if (Path(bin_dir) / "unattended").is_file():
        assert env["PATH"] == f"{empty}{os.pathsep}{bin_dir}"  # appended, never first
    else:
        assert env["PATH"] == str(empty)
    own = tmp_path / "own-bin"
    own.mkdir()
    (own / "unattended").write_text("#!/bin/sh\n")
    (own / "unattended").chmod(0o755)
    assert worker_env({"PATH": str(own)}, tmp_path, "r1", 1)["PATH"] == str(own)
