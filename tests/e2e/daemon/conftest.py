"""The daemon tests use the root ``hermetic_env`` (a dict, the fake claude on PATH), not the
real-CLI tests' builder of the same name in ``tests/e2e/conftest.py``."""

from tests.conftest import hermetic_env  # noqa: F401 - re-exported fixture
