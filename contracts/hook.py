"""The context-meter hook's input and output, as plain TypedDicts.

The hook runs after every tool call of every worker, so this module imports nothing heavy.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class HookInput(TypedDict):
    """What Claude Code writes to a PostToolUse hook's stdin (fields we read)."""

    session_id: str
    transcript_path: str
    cwd: str
    hook_event_name: str
    tool_name: NotRequired[str]


class HookSpecificOutput(TypedDict):
    hookEventName: str
    additionalContext: str


class HookOutput(TypedDict):
    hookSpecificOutput: HookSpecificOutput


# Environment variables the daemon passes to the hook (through the worker's environment).
ENV_CONTEXT_WINDOW = "UNATTENDED_CONTEXT_WINDOW"
ENV_WARN_PCT = "UNATTENDED_CONTEXT_WARN_PCT"
ENV_STOP_PCT = "UNATTENDED_CONTEXT_STOP_PCT"
ENV_STATE_DIR = "UNATTENDED_STATE_DIR"
ENV_CONTEXT_SOURCE = "UNATTENDED_CONTEXT_SOURCE"
ENV_DEADLINE = "UNATTENDED_DEADLINE"  # the run's deadline at spawn, epoch seconds
ENV_DEADLINE_WARN_S = "UNATTENDED_DEADLINE_WARN_S"  # tell the worker this long before it
