"""Reading any of our JSON files: UTF-8, valid JSON, an object, a schema_version we know, a valid
model.

One reader for every format, so every file's refusal reads the same: one line naming the file,
what is wrong with it and what to do. Whatever the bytes (not UTF-8, truncated, nested 100,000
deep, numbers past any range), the only exception out of here is the format's own error.
"""

from __future__ import annotations

import json
import math
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class _NotJson(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: json reads it as inf
        raise _NotJson(f"number {text[:20]} out of range")
    return value


def _no_constant(name: str) -> float:
    raise _NotJson(f"{name} is not a JSON number")


def _printable(text: str) -> str:
    """One line whatever a hostile file put in a key: control characters become '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


def load_json(data: str | bytes) -> object:
    """``json.loads`` that raises only ValueError ("is not ... (why)"), for any input: strict
    UTF-8, no NaN/Infinity, no number that overflows, no nesting Python cannot recurse into."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise _NotJson(f"is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise _NotJson(f"is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise _NotJson("is not valid JSON (nested too deeply)") from None
    except _NotJson as exc:
        raise _NotJson(f"is not valid JSON ({exc})") from None
    except ValueError as exc:  # an integer past Python's 4300-digit conversion limit
        raise _NotJson(f"is not valid JSON ({str(exc).split(';')[0][:80]})") from None


def parse_versioned(
    model: type[M],
    data: str | bytes,
    where: object,
    version: int,
    error: type[Exception],
    hint: str = "",
) -> M:
    """Validate ``data`` as ``model``; any failure raises ``error`` with one clear line ending
    in ``hint`` (what the user can do about it)."""
    todo = f"; {hint}" if hint else ""
    try:
        raw = load_json(data)
    except ValueError as exc:
        raise error(f"{where} {exc}{todo}") from None
    if not isinstance(raw, dict):
        raise error(f"{where}: expected a JSON object{todo}")
    found = raw.get("schema_version")
    if found != version:
        shown = repr(found) if isinstance(found, int | str | None) else type(found).__name__
        raise error(
            f"{where}: schema_version {shown[:40]} is not supported (this unattended reads "
            f"{version}){todo}"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _printable(".".join(str(p) for p in first["loc"]) or "(root)")
        message = _printable(first["msg"].removeprefix("Value error, "))
        raise error(f"{where}: field {field[:100]}: {message[:200]}{todo}") from None
    except RecursionError:
        raise error(f"{where}: nested too deeply{todo}") from None
