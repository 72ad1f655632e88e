"""The daemon tests use the fake claude's hermetic environment (tests/conftest.py), not the
real CLI's fixture of the same name in tests/e2e/conftest.py."""

from tests.conftest import hermetic_env  # noqa: F401
