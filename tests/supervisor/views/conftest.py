"""Fixtures for the seeing commands: a recorded night of two runs in a real git repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.supervisor.views.recorded import Recorded, build_recorded


@pytest.fixture
def recorded(tmp_path: Path, hermetic_env: dict[str, str]) -> Recorded:
    return build_recorded(tmp_path / "names", hermetic_env)
