"""The tool call a worker is busy with, from the tail of its raw stream-json log (for watch)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unattended.supervisor.worker.stream import ToolCall


TAIL_STEPS = (64 * 1024, 1024 * 1024, 8 * 1024 * 1024)  # bytes read from a stream's end


def _assistant_tool(line: bytes) -> ToolCall | None:
    from unattended.supervisor.worker.stream import ToolCall, short_arg

    if b'"tool_use"' not in line:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") != "assistant":
        return None
    message = event.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    found = None
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "tool_use":
            name = str(block.get("name") or "?")
            found = ToolCall(name, short_arg(name, block.get("input")))
    return found


def last_tool_call(stream_path: Path) -> ToolCall | None:
    """The latest tool call in a worker's raw stream, read from the file's tail.

    Only the tool name and a short argument (a command, a path, a pattern) come out, never
    file contents. Tries a small tail first and grows it when the last call is further back.
    """
    try:
        fh = stream_path.open("rb")
    except OSError:
        return None
    with fh:
        size = fh.seek(0, os.SEEK_END)
        for step in TAIL_STEPS:
            start = max(0, size - step)
            fh.seek(start)
            lines = fh.read(size - start).split(b"\n")
            if start > 0:
                lines = lines[1:]
            for line in reversed(lines):
                if b'"assistant"' in line[:80]:
                    call = _assistant_tool(line)
                    if call is not None:
                        return call
            if start == 0:
                break
    return None
