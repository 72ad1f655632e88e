"""Where a run's files live: one place so every reader agrees.

Two directories of the same name and layout:

- ``<project>/.unattended/`` (:attr:`RunPaths.root`) is where people look and what workers
  touch: copies of ``state.json`` and ``run.log`` kept current for reading, the stop sentinel,
  ``control.json``, ``handoff.md``, the worker's ``--settings`` file and its context meter, the
  pid file and reports. A worker's ``git clean -fdx`` may delete it; the daemon recreates it.
- ``<git dir>/.unattended/`` (:attr:`RunPaths.records`) holds what must survive that clean: the
  real ``state.json``, the whole ``run.log`` and ``events.jsonl``, ``telemetry.jsonl``, the
  raw worker logs in ``iterations/``, earlier runs in ``runs/``, the budget ledger and the
  advice decisions. ``git clean`` never enters the git dir (the lock lives there too). Each
  linked worktree has a git dir, and so records, of its own.

Without a git dir (a directory that is not a work tree's top) both are ``.unattended/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from unattended.contracts.names import (
    HANDOFF_FILE_NAME,
    LOCK_FILE_NAME,
    METER_FILE_NAME,
    STATE_DIR_NAME,
)


def git_dir_of(project: Path) -> Path | None:
    """The git dir of the work tree whose top is ``project``, from ``.git`` alone (a directory,
    or a ``gitdir:`` file in a linked worktree or submodule); None when there is neither."""
    dot_git = project / ".git"
    if dot_git.is_dir():
        return dot_git
    try:
        text = dot_git.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    first = text.splitlines()[0] if text else ""
    if not first.startswith("gitdir:"):
        return None
    target = Path(first.removeprefix("gitdir:").strip())
    target = target if target.is_absolute() else project / target
    return target if target.is_dir() else None


@dataclass(frozen=True)
class RunPaths:
    project: Path

    @property
    def root(self) -> Path:
        """``<project>/.unattended``: what people read and workers touch."""
        return self.project / STATE_DIR_NAME

    @cached_property
    def git_dir(self) -> Path | None:
        return git_dir_of(self.project)

    @property
    def records(self) -> Path:
        """``<git dir>/.unattended``: what a worker's ``git clean -fdx`` must not erase."""
        return self.git_dir / STATE_DIR_NAME if self.git_dir is not None else self.root

    # ----- kept in the git dir -------------------------------------------------------------
    @property
    def state(self) -> Path:
        return self.records / "state.json"

    @property
    def run_log(self) -> Path:
        return self.records / "run.log"

    @property
    def events(self) -> Path:
        return self.records / "events.jsonl"

    @property
    def telemetry(self) -> Path:
        return self.records / "telemetry.jsonl"

    @property
    def iterations(self) -> Path:
        return self.records / "iterations"

    @property
    def runs(self) -> Path:
        return self.records / "runs"

    @property
    def budget(self) -> Path:
        return self.records / "budget.json"

    @property
    def daemon_stderr(self) -> Path:
        return self.records / "daemon.stderr"

    def iteration_stdout(self, number: int) -> Path:
        return self.iterations / f"{number:04d}.jsonl"

    def iteration_stderr(self, number: int) -> Path:
        return self.iterations / f"{number:04d}.stderr"

    # ----- in the work tree ----------------------------------------------------------------
    @property
    def state_view(self) -> Path:
        """A copy of ``state.json`` rewritten with it, for people (``cat``, ``jq``)."""
        return self.root / "state.json"

    @property
    def run_log_view(self) -> Path:
        """``run.log`` lines written here too, for ``tail -F``; the whole log is in records."""
        return self.root / "run.log"

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
    def handoff(self) -> Path:
        return self.root / HANDOFF_FILE_NAME

    @property
    def worker_settings(self) -> Path:
        return self.root / "worker-settings.json"

    @property
    def context_meter(self) -> Path:
        return self.root / METER_FILE_NAME

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def iteration_prompt(self, number: int) -> Path:
        """The worker's prompt, staged for its stdin (unlinked as soon as the worker has it)."""
        return self.iterations / f".{number:04d}.prompt"


def lock_path(git_dir: Path) -> Path:
    """The singleton lock lives in the git dir, which ``git clean -fdx`` never touches."""
    return git_dir / LOCK_FILE_NAME


def shown_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it (a linked worktree's git dir is not), for
    messages people read."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
