"""Where things live under ``<project>/.unattended/``: one place so every reader agrees."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unattended.contracts.names import (
    HANDOFF_FILE_NAME,
    LOCK_FILE_NAME,
    METER_FILE_NAME,
    STATE_DIR_NAME,
)


@dataclass(frozen=True)
class RunPaths:
    project: Path

    @property
    def root(self) -> Path:
        return self.project / STATE_DIR_NAME

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def pid(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def stop(self) -> Path:
        return self.root / "stop"

    @property
    def control(self) -> Path:
        return self.root / "control.json"

    @property
    def run_log(self) -> Path:
        return self.root / "run.log"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def telemetry(self) -> Path:
        return self.root / "telemetry.jsonl"

    @property
    def iterations(self) -> Path:
        return self.root / "iterations"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def handoff(self) -> Path:
        return self.root / HANDOFF_FILE_NAME

    @property
    def worker_settings(self) -> Path:
        return self.root / "worker-settings.json"

    @property
    def context_meter(self) -> Path:
        return self.root / METER_FILE_NAME

    @property
    def budget(self) -> Path:
        return self.root / "budget.json"

    def iteration_stdout(self, number: int) -> Path:
        return self.iterations / f"{number:04d}.jsonl"

    def iteration_stderr(self, number: int) -> Path:
        return self.iterations / f"{number:04d}.stderr"

    def iteration_prompt(self, number: int) -> Path:
        """The worker's prompt, staged for its stdin (unlinked as soon as the worker has it)."""
        return self.iterations / f".{number:04d}.prompt"


def lock_path(git_dir: Path) -> Path:
    """The singleton lock lives in the git dir, which ``git clean -fdx`` never touches."""
    return git_dir / LOCK_FILE_NAME
