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


