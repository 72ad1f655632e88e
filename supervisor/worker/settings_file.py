"""The settings file each worker gets through ``--settings``, and the hook's environment.

Why a generated file: the context meter must run after every tool call of every worker, but the
person's own Claude settings (``~/.claude/settings.json``, the project's ``.claude/``) are never
touched. ``--settings FILE`` adds our PostToolUse hook on top of theirs for this worker only.
The CLI silently ignores a settings file that fails validation in ``-p`` mode, so the shape
here is pinned by a test against the documented format.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from unattended.contracts.names import (
    ENV_CONTEXT_SOURCE,
    ENV_CONTEXT_WINDOW,
    ENV_RECORDS_DIR,
    ENV_STATE_DIR,
    ENV_STOP_PCT,
    ENV_WARN_PCT,
    ENV_WINDOW_PINNED,
)
from unattended.supervisor.records.fsio import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from unattended.contracts.paths import RunPaths
    from unattended.contracts.settings import Settings

# Seconds the CLI waits for one hook run; the meter answers in milliseconds and fails open.
HOOK_TIMEOUT_S = 10


def hook_command(settings: Settings | None = None) -> list[str]:
    """The command the worker's CLI runs after each tool call.

    ``python -I`` keeps the worker's directory (its cwd) off ``sys.path``: with ``python -m
    supervisor`` a project holding ``json.py`` or its own ``supervisor/`` package would shadow
    ours, and the hook would crash instead of failing open. ``-S`` skips ``site`` (an editable
    install's finder alone costs ~15 ms): both context sources need only the standard library.
    """
    source = settings.context_source if settings is not None else "transcript"
    flags = ["-I", "-S"]
    script = Path(__file__).resolve().parents[1] / "hook" / "script.py"
    return [sys.executable, *flags, str(script), "--context-source", source]


def settings_document(hook_command: list[str]) -> dict:
    """``{"hooks": {"PostToolUse": [{"matcher": "*", "hooks": [{"type": "command", ...}]}]}}``."""
    command = shlex.join(hook_command)
    return {
        "hooks": {
            "PostToolUse": [
                {
                    "matcher": "*",
                    "hooks": [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}],
                }
            ]
        }
    }


def write_worker_settings(paths: RunPaths, hook_command: list[str]) -> Path:
    """Write ``.unattended/worker-settings.json`` (0600, atomically) and return its path."""
    ensure_private_dir(paths.root)
    target = paths.worker_settings
    text = json.dumps(settings_document(hook_command), indent=2) + "\n"
    try:  # the same every iteration: an atomic write (two fsyncs) only when it differs
        if not target.is_symlink() and target.read_text(encoding="utf-8") == text:
            return target
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write(target, text)
    return target


def hook_env(settings: Settings, window: int, paths: RunPaths | None = None) -> dict[str, str]:
    """Variables the hook reads: window, thresholds, context source, and (given paths) where to
    record readings. Without ``paths`` the hook falls back to ``$UNATTENDED_PROJECT/.unattended``.
    """
    env = {
        ENV_CONTEXT_WINDOW: str(int(window)),
        ENV_WARN_PCT: f"{settings.context_warn_pct:g}",
        ENV_STOP_PCT: f"{settings.context_stop_pct:g}",
        ENV_CONTEXT_SOURCE: settings.context_source,
    }
    if settings.context_window is not None:
        env[ENV_WINDOW_PINNED] = "1"  # the user's window wins over what the init event names
    if paths is not None:
        env[ENV_STATE_DIR] = str(paths.root)
        env[ENV_RECORDS_DIR] = str(paths.records)  # where the worker's raw stdout log is
    return env
