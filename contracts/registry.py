"""The per-user run registry: ``$XDG_STATE_HOME/unattended/daemons/<pid>.json``.

Each daemon writes one small file when it starts and removes it when it exits, so ``unattended
ps`` and ``unattended stop --all`` can find every run of this user without scanning the disk.
A file left behind by a daemon killed with SIGKILL is how a crash becomes visible: the pid is
dead, or reused by another process (different ``pid_create_time``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from unattended.contracts.timefmt import RunId, UtcDatetime
from unattended.contracts.versioned import parse_versioned

SCHEMA_VERSION = 1

# The keys of one object in `unattended ps --json`, in order (issue 7: exactly these).
PS_JSON_FIELDS = ("project", "pid", "status", "alive", "iteration", "started_at", "cost_usd")


class RegistryError(Exception):
    """A registry file exists but cannot be read: corrupt, or written by another version."""


class RegistryEntry(BaseModel):
    """What a daemon records about itself in the registry (one file per daemon)."""

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    project: str
    pid: int
    # psutil create_time: tells the daemon from a reused pid (None: unknown, pid alone counts)
    pid_create_time: float | None
    run_id: RunId
    started_at: UtcDatetime

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


class RunEntry(BaseModel):
    """One row of ``unattended ps``: the registry entry joined with the project's state.json."""

    project: str
    pid: int
    status: str  # a RunStatus value, "crashed", or "unknown" (state.json unreadable)
    alive: bool
    iteration: int | None = None
    started_at: UtcDatetime
    cost_usd: float | None = None
    run_id: RunId
    pid_create_time: float | None = None
    max_iterations: int | None = None
    updated_at: UtcDatetime | None = None
    note: str | None = None  # why the status is "unknown", for people

    def ps_json(self) -> dict[str, object]:
        """The object `ps --json` prints: exactly PS_JSON_FIELDS."""
        data = self.model_dump(mode="json")
        return {key: data[key] for key in PS_JSON_FIELDS}


REGISTRY_HINT = "remove it unless a daemon of that pid is running"


def parse_entry(data: str | bytes, path: Path) -> RegistryEntry:
    """Parse one registry file, turning every failure into one clear ``RegistryError``."""
    return parse_versioned(RegistryEntry, data, path, SCHEMA_VERSION, RegistryError, REGISTRY_HINT)
