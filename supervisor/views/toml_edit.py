"""Set one top-level ``key = value`` in a TOML file's text with tomlkit, keeping everything else
as it was: comments, blank lines, key order, the key's own trailing comment.

A real TOML parser, not a line editor: a line that looks like the key inside a multi-line
string or under a table is left alone. tomlkit is imported only here (``advise --apply``).
"""

from __future__ import annotations

import tomllib
from typing import Any


class TomlEditError(ValueError):
    """The text is not TOML, the key is not a plain value, or the result would not read back
    with the new value."""


def set_key(text: str, key: str, value: Any, note: str | None = None) -> str:
    """``text`` with top-level ``key`` set to ``value``; ``note`` becomes the comment of a line
    that had to be added (an existing line keeps its own comment). The result is parsed again
    (``tomllib``) and refused unless it holds ``value`` at ``key``."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError
    from tomlkit.items import AoT

    try:
        doc = tomlkit.parse(text)
        new = tomlkit.item(value)
        old = doc.get(key)
        if old is not None:
            if isinstance(old, dict | AoT):
                raise TomlEditError(f"{key} is a table, not a value")
            new.trivia.comment = old.trivia.comment
            new.trivia.comment_ws = old.trivia.comment_ws
        elif note:
            new.comment(note)
            new.trivia.comment_ws = "  "
        doc[key] = new
        result = tomlkit.dumps(doc)
    except TOMLKitError as exc:
        raise TomlEditError(str(exc)) from None
    try:
        parsed = tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise TomlEditError(f"the edited text does not parse: {exc}") from None
    if parsed.get(key) != value or type(parsed.get(key)) is not type(value):
        raise TomlEditError(f"the edited text does not read back {key} = {value!r}")
    return result
