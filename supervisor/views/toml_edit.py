"""Set one top-level ``key = value`` in a TOML file's text, keeping everything else as it was:
comments, blank lines, key order, the key's own trailing comment.

``tomllib`` reads but cannot write, and a round trip through a writer would drop the user's
comments, so this is a careful line edit: replace the key's line when it is there (outside any
table), else add it before the first table header or at the end.
"""

from __future__ import annotations

import json
import re
from typing import Any

_KEY_LINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<quote>[\"']?)(?P<key>[A-Za-z0-9_-]+)(?P=quote)"
    r"(?P<sep>[ \t]*=[ \t]*)(?P<rest>.*?)(?P<nl>\r?\n)?$"
)
_TABLE = re.compile(r"^[ \t]*\[")


class TomlEditError(ValueError):
    """The key's current value spans lines (or is otherwise beyond a one-line edit)."""


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TomlEditError(f"cannot write a {type(value).__name__} value")


def _comment_after_value(rest: str) -> str | None:
    """The trailing comment (from its '#') after a one-line value; None when there is none.

    Raises TomlEditError for values that continue on the next line.
    """
    text = rest.rstrip()
    if text.startswith(('"""', "'''")) or text[:1] in "[{" and not _closed(text):
        raise TomlEditError("the current value spans several lines")
    i = 0
    if text[:1] in "\"'":
        quote = text[0]
        i = 1
        while i < len(text):
            if quote == '"' and text[i] == "\\":
                i += 2
                continue
            if text[i] == quote:
                i += 1
                break
            i += 1
    hash_at = text.find("#", i)
    return text[hash_at:] if hash_at >= 0 else None


def _closed(text: str) -> bool:
    """Whether an inline array/table opened on this line closes on it (brackets outside strings)."""
    depth, quote, i = 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return True
        elif ch == "#":
            return False
        i += 1
    return False


def set_key(text: str, key: str, value: Any, note: str | None = None) -> str:
    """``text`` with top-level ``key`` set to ``value``; ``note`` becomes the comment of a line
    that had to be added (an existing line keeps its own comment)."""
    rendered = format_value(value)
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    insert_at = len(lines)
    for i, line in enumerate(lines):
        if _TABLE.match(line):
            insert_at = i
            break
        match = _KEY_LINE.match(line)
        if match is None or match.group("key") != key:
            continue
        comment = _comment_after_value(match.group("rest"))
        new = f"{match.group('indent')}{match.group('quote')}{key}{match.group('quote')}"
        new += f"{match.group('sep')}{rendered}"
        if comment:
            new += f"  {comment}"
        lines[i] = new + (match.group("nl") or "")
        return "".join(lines)
    added = f"{key} = {rendered}" + (f"  # {note}" if note else "") + newline
    before = lines[:insert_at]
    if before and not before[-1].endswith("\n"):
        before[-1] += newline
    if insert_at < len(lines):
        added += newline  # keep a blank line before the table header
    return "".join([*before, added, *lines[insert_at:]])
