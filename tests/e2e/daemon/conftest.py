"""The daemon tests use the root fixtures (the fake claude on PATH), not tests/e2e/conftest.py's
real-CLI ``hermetic_env``, which would otherwise shadow them here."""

from tests.conftest import hermetic_env, project  # noqa: F401
