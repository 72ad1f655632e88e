"""Every module of the package imports cleanly in a fresh interpreter: the CLI imports most of
them lazily (inside the command that needs them), so a broken import would otherwise surface
only when that command runs, perhaps at 3 a.m. inside the daemon."""

from __future__ import annotations

import subprocess
import sys

from tests.architecture.test_import_graph import source_modules
from tests.conftest import REPO_ROOT

# Scripts whose import *is* their run: exercised as processes by their own tests.
SCRIPTS = {"unattended.__main__", "unattended.supervisor.hook.script"}


def test_every_module_imports_on_its_own() -> None:
    names = sorted(set(source_modules()) - SCRIPTS)
    assert len(names) > 100
    code = (
        "import importlib, sys, traceback\n"
        "bad = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        bad.append(name + ': ' + traceback.format_exc().splitlines()[-1])\n"
        "print('\\n'.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *names],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
