"""Reading any of our JSON files: valid JSON, an object, a schema_version we know, a valid model.

One reader for every format, so every file's refusal reads the same: one line naming the file
and what is wrong with it.
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def parse_versioned(
    model: type[M], text: str, where: object, version: int, error: type[Exception]
) -> M:
    """Validate ``text`` as ``model``; any failure raises ``error`` with one clear line."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise error(f"{where}: expected a JSON object")
    found = raw.get("schema_version")
    if found != version:
        raise error(
            f"{where}: schema_version {found!r} is not supported (this unattended reads {version})"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(root)"
        message = first["msg"].removeprefix("Value error, ")
        raise error(f"{where}: field {field}: {message}") from None
