"""The CLI's start-up skips pydantic's plugin discovery, without changing what pydantic does."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys
from unattended.supervisor.cli.entry import without_pydantic_plugins
without_pydantic_plugins()
from unattended.contracts.settings import Settings
print(Settings(max_iterations=3).max_iterations)
try:
    Settings(max_iterations=-1)
except Exception as exc:
    print(type(exc).__name__)
print("importlib.metadata" in sys.modules)
"""


def probe(**env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**environ, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_models_validate_as_ever_and_no_plugin_is_looked_for() -> None:
    assert probe() == ["3", "ValidationError", "False"]


def test_a_user_who_disables_only_some_plugins_keeps_pydantic_s_own_loader() -> None:
    assert probe(PYDANTIC_DISABLE_PLUGINS="some_plugin") == ["3", "ValidationError", "True"]
