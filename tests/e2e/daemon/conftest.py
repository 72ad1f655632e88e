"""The daemon tests run the fake claude, not the real CLI: they use the project-wide
``hermetic_env`` (a dict), not ``tests/e2e/conftest.py``'s builder for real-CLI runs."""

from tests.conftest import hermetic_env  # noqa: F401
