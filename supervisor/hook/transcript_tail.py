"""The transcript's tail, read fast: the context-meter hook's half that knows the CLI's files.

Standard library only and no ``json`` import (``json`` pulls in ``re``: ~13 ms per hook call):
the hook runs after every tool call. ``supervisor.context_meter`` shares these line parsers.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~4 ms to import; annotations are strings here
    from typing import Any

FIRST_TAIL_BYTES = 64 * 1024
MAX_TAIL_BYTES = 64 * 1024 * 1024
LAG_BUDGET_S = 0.5  # at most this long for the CLI to write the tool call's message


class MeterError(Exception):
    """A reading could not be taken; the message goes to context-meter.json."""


# ----- JSON without importing ``json`` ---------------------------------------------------------
# ``import json`` pulls in ``re``, ``enum`` and friends: ~13 ms of CPU per hook call here, most
# of what the hook costs above the interpreter's own start. The C accelerator ``_json`` (what
# ``json`` itself uses) parses and escapes just the same; ``json`` is the fallback.

_WS = " \t\n\r"


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity


try:
    from _json import encode_basestring_ascii as _encode_str
    from _json import make_scanner as _make_scanner

    _scan = _make_scanner(_ScanContext())
except (ImportError, AttributeError, TypeError):  # another interpreter: use the json module
    _scan = _encode_str = None  # type: ignore[assignment]


def loads(data: bytes | str) -> Any:
    """``json.loads`` for hook input, transcript lines and the meter file; ValueError if bad."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    if _scan is None:
        import json

        return json.loads(text)
    start, end = 0, len(text)
    while start < end and text[start] in _WS:
        start += 1
    try:
        obj, stop = _scan(text, start)
    except RecursionError:
        raise
    except Exception:  # StopIteration, or (3.11) a SystemError from the C error path
        raise ValueError("not JSON") from None
    while stop < end and text[stop] in _WS:
        stop += 1
    if stop != end:
        raise ValueError("extra data after the JSON value")
    return obj


def dumps(obj: Any) -> str:
    """Compact ``json.dumps`` (ASCII, separators ``,`` and ``:``) of plain data."""
    if _encode_str is None:
        import json

        return json.dumps(obj, separators=(",", ":"))
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, str):
        return _encode_str(obj)
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, float):
        return float.__repr__(obj) if obj == obj and obj not in (1e999, -1e999) else "null"
    if isinstance(obj, dict):
        return "{" + ",".join(f"{_encode_str(str(k))}:{dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    return _encode_str(str(obj))


# ----- transcript lines (shared with supervisor.context_meter) --------------------------------


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """One transcript line as a dict, or None for blank, torn or non-object lines."""
    try:
        obj = loads(raw)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def is_compact_boundary(obj: dict[str, Any]) -> bool:
    return obj.get("type") == "system" and obj.get("subtype") == "compact_boundary"


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def assistant_usage(obj: dict[str, Any]) -> tuple[str | None, str | None, dict, bool] | None:
    """(message id, model, usage, is_sidechain) of an assistant line with usage, else None.

    A message with several content blocks is written once per block with the same id and
    usage: callers deduplicate by the id.
    """
    if obj.get("type") != "assistant":
        return None
    message = obj.get("message")
    if not isinstance(message, dict):
        return None
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return None
    model = message.get("model")
    if model == "<synthetic>":
        return None  # an API error the CLI wrote itself: no request was billed
    message_id = message.get("id") if isinstance(message.get("id"), str) else None
    if message_id is None and isinstance(obj.get("requestId"), str):
        message_id = obj["requestId"]
    return (
        message_id,
        model if isinstance(model, str) else None,
        usage,
        bool(obj.get("isSidechain")),
    )


def context_tokens(usage: dict) -> int:
    """What the request sent: input + cache creation + cache read tokens."""
    return (
        as_int(usage.get("input_tokens"))
        + as_int(usage.get("cache_creation_input_tokens"))
        + as_int(usage.get("cache_read_input_tokens"))
    )


def latest_context(path: str) -> tuple[int | None, str | None]:
    """(context tokens, model) of the newest main-chain assistant message after the last
    compaction; (None, None) when the newest relevant line is a compaction boundary.

    Reads the tail only, growing it (x4) until a relevant line is found or the file is read.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        chunk = FIRST_TAIL_BYTES
        while True:
            start = max(0, size - chunk)
            f.seek(start)
            lines = f.read(size - start).split(b"\n")
            if start > 0:
                lines = lines[1:]  # starts mid-line
            for raw in reversed(lines):
                if b"compact_boundary" not in raw and b"assistant" not in raw:
                    continue
                obj = parse_line(raw)
                if obj is None:
                    continue  # e.g. the line being written right now
                if is_compact_boundary(obj):
                    return None, None
                found = assistant_usage(obj)
                if found and not found[3]:
                    tokens = context_tokens(found[2])
                    if tokens:
                        return tokens, found[1]
            if start == 0:
                raise MeterError("no main-chain assistant message with usage in the transcript")
            if chunk >= MAX_TAIL_BYTES:
                raise MeterError(f"no assistant message in the last {MAX_TAIL_BYTES} bytes")
            chunk *= 4


def wait_for_line(path: str, needle: bytes, budget_s: float = LAG_BUDGET_S) -> bool:
    """The CLI may run the hook a moment before it appends the assistant message that called
    the tool: wait (briefly, only then) until the transcript's tail names the tool call, so
    the reading is of this request and not the one before. On a session's first tool call
    the transcript may not exist yet either (seen with CLI 2.1.197): the same wait."""
    deadline = time.monotonic() + budget_s
    while True:
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(max(0, size - FIRST_TAIL_BYTES))
                if needle in f.read():
                    return True
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            return False  # measure what is there: a reading one message late beats none
        time.sleep(0.005)
