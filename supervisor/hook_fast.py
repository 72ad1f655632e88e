"""``unattended hook context-meter``: how full is this worker's context window?

Claude Code runs this after every tool call of every worker (a PostToolUse hook given through
``--settings``), so it is dispatched from ``supervisor.entry`` before the CLI framework loads,
and imports only ``os``, ``sys``, ``time``, ``fcntl`` and the C half of ``json``: typer,
pydantic and ``anthropic`` cost 60-1,100 ms to import. It reads only the tail of the
transcript. ``supervisor/hook_script.py`` runs it under ``python -I -S``, skipping ``site`` and
never putting the worker's directory on ``sys.path``: see
``supervisor.worker_settings.hook_command``.

The reading is the latest main-chain assistant message's usage (input + cache creation + cache
read tokens): what the last request sent. Sidechain (subagent) lines have their own context and
are skipped; nothing before the last ``compact_boundary`` counts. Above the warn threshold the
worker is told to finish its step; above the stop threshold to write handoff notes, commit and
end. The hook fails open (exit 0, no output) but counts every failure in
``.unattended/context-meter.json``, which is also the live reading ``budget check`` and ``step``
use inside a worker.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~4 ms to import; annotations are strings here
    from typing import Any

# The names are pinned against contracts.hook by a test; spelled out to keep this import-light.
ENV_CONTEXT_WINDOW = "UNATTENDED_CONTEXT_WINDOW"
ENV_WARN_PCT = "UNATTENDED_CONTEXT_WARN_PCT"
ENV_STOP_PCT = "UNATTENDED_CONTEXT_STOP_PCT"
ENV_STATE_DIR = "UNATTENDED_STATE_DIR"
ENV_CONTEXT_SOURCE = "UNATTENDED_CONTEXT_SOURCE"
ENV_PROJECT = "UNATTENDED_PROJECT"
ENV_ITERATION = "UNATTENDED_ITERATION"

METER_FILE = "context-meter.json"
METER_LOCK = ".context-meter.lock"
HANDOFF_FILE = "handoff.md"
SCHEMA_VERSION = 1
DEFAULT_WARN_PCT = 70.0
DEFAULT_STOP_PCT = 85.0
FIRST_TAIL_BYTES = 64 * 1024
MAX_TAIL_BYTES = 64 * 1024 * 1024
LAG_BUDGET_S = 0.5  # at most this long for the CLI to write the tool call's message

WARN_TEXT = (
    "unattended context meter: your context window is {pct:.1f}% full ({tokens:,} of {window:,} "
    "tokens). Finish the step you are on and commit it; do not start another large step. "
    "At {stop:g}% you will be asked to hand off to a fresh worker."
)
STOP_TEXT = (
    "unattended context meter: your context window is {pct:.1f}% full ({tokens:,} of {window:,} "
    "tokens). Stop now: write handoff notes for the next worker to {handoff} (what is done, "
    "what is left, what you were in the middle of, how to check it), commit your work with git, "
    "and end the session without starting anything new."
)


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
    the reading is of this request and not the one before."""
    deadline = time.monotonic() + budget_s
    while True:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - FIRST_TAIL_BYTES))
            if needle in f.read():
                return True
        if time.monotonic() >= deadline:
            return False  # measure what is there: a reading one message late beats none
        time.sleep(0.005)


# ----- the hook ----------------------------------------------------------------------------


def _state_dir(environ: dict[str, str], hook_input: dict[str, Any] | None) -> str | None:
    if environ.get(ENV_STATE_DIR):
        return environ[ENV_STATE_DIR]
    if environ.get(ENV_PROJECT):
        return os.path.join(environ[ENV_PROJECT], ".unattended")
    cwd = hook_input.get("cwd") if isinstance(hook_input, dict) else None
    if isinstance(cwd, str) and os.path.isdir(os.path.join(cwd, ".unattended")):
        return os.path.join(cwd, ".unattended")
    return None


def _float_env(environ: dict[str, str], name: str, default: float) -> float:
    try:
        return float(environ[name])
    except (KeyError, ValueError):
        return default


def _window(environ: dict[str, str], model: str | None) -> int:
    try:
        window = int(environ[ENV_CONTEXT_WINDOW])
        if window > 0:
            return window
    except (KeyError, ValueError):
        pass
    from contracts.models_table import table_window  # stdlib-only; when the env lacks it

    return table_window(model)


def band_of(pct: float, warn: float, stop: float) -> str:
    if pct >= stop:
        return "stop"
    if pct >= warn:
        return "warn"
    return "normal"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record(state_dir: str | None, reading: dict[str, Any] | None, error: str | None) -> None:
    """Add one reading or one failure to context-meter.json (locked read-modify-write, atomic)."""
    if not state_dir:
        return
    import fcntl

    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    target = os.path.join(state_dir, METER_FILE)
    lock_fd = os.open(
        os.path.join(state_dir, METER_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
    )
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            with open(target, "rb") as f:
                data = loads(f.read())
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data["schema_version"] = SCHEMA_VERSION
        data["readings"] = as_int(data.get("readings"))
        data["failures"] = as_int(data.get("failures"))
        data.setdefault("last_error", None)
        data.setdefault("last_error_at", None)
        data.setdefault("last_reading", None)
        if reading is not None:
            data["readings"] += 1
            data["last_reading"] = reading
            # Flat copies for `status`, which reads band and pct at the top level.
            data["band"], data["pct"] = reading["band"], reading["percent"]
            data["tokens"], data["window"] = reading["tokens"], reading["window"]
        if error is not None:
            data["failures"] += 1
            data["last_error"], data["last_error_at"] = error[:500], _now()
        data["updated_at"] = _now()
        tmp = f"{target}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.write(fd, (dumps(data) + "\n").encode())
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except OSError:
            os.unlink(tmp)  # a full disk must not leave temp files behind
            raise
    finally:
        os.close(lock_fd)  # releases the lock


def _parse_args(argv: list[str], environ: dict[str, str]) -> str:
    source = environ.get(ENV_CONTEXT_SOURCE) or "transcript"
    for i, arg in enumerate(argv):
        if arg == "--context-source" and i + 1 < len(argv):
            source = argv[i + 1]
        elif arg.startswith("--context-source="):
            source = arg.split("=", 1)[1]
    return source


def measure(
    hook_input: Any, environ: dict[str, str], source: str
) -> tuple[dict[str, Any], str | None, str | None]:
    """(reading, text for the worker or None, api failure or None); raises MeterError."""
    if not isinstance(hook_input, dict):
        raise MeterError("hook input is not a JSON object")
    path = hook_input.get("transcript_path")
    if not isinstance(path, str) or not path:
        raise MeterError("hook input has no transcript_path")
    tool_use_id = hook_input.get("tool_use_id")
    try:
        if isinstance(tool_use_id, str) and tool_use_id:
            wait_for_line(path, tool_use_id.encode())
        tokens, model = latest_context(path)
    except OSError as exc:
        raise MeterError(f"cannot read the transcript {path}: {exc.strerror or exc}") from None
    compacted = tokens is None
    tokens = tokens or 0
    used_source, api_error = "transcript", None
    if source == "api" and not compacted:
        try:
            from supervisor.hook_api import api_tokens

            counted = api_tokens(path, model)
            if counted > tokens:
                tokens, used_source = counted, "api"
        except Exception as exc:  # fail open: the transcript reading stands
            api_error = f"api: {type(exc).__name__}: {exc}"
    window = _window(environ, model)
    warn = _float_env(environ, ENV_WARN_PCT, DEFAULT_WARN_PCT)
    stop = _float_env(environ, ENV_STOP_PCT, DEFAULT_STOP_PCT)
    pct = tokens / window * 100
    band = band_of(pct, warn, stop)
    session = hook_input.get("session_id")
    reading = {
        "tokens": tokens,
        "percent": round(pct, 1),
        "band": band,
        "window": window,
        "session_id": session if isinstance(session, str) else None,
        "model": model,
        "iteration": environ.get(ENV_ITERATION),
        "source": used_source,
        "compacted": compacted,
        "time": _now(),
    }
    text = None
    if band == "warn":
        text = WARN_TEXT.format(pct=pct, tokens=tokens, window=window, stop=stop)
    elif band == "stop":
        state_dir = _state_dir(environ, hook_input)
        handoff = os.path.join(state_dir, HANDOFF_FILE) if state_dir else ".unattended/handoff.md"
        text = STOP_TEXT.format(pct=pct, tokens=tokens, window=window, handoff=handoff)
    return reading, text, api_error


def hook_output(text: str) -> str:
    """The exact JSON Claude Code reads from a PostToolUse hook's stdout."""
    doc = {"hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": text}}
    return dumps(doc)


def run_hook(argv: list[str]) -> int:
    """Entry point; always returns 0 (the hook must never block or fail the worker)."""
    environ = dict(os.environ)
    hook_input: Any = None
    state_dir: str | None = None
    try:
        source = _parse_args(argv, environ)
        raw = sys.stdin.buffer.read() if sys.stdin is not None else b""
        try:
            hook_input = loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            hook_input = None
        state_dir = _state_dir(environ, hook_input if isinstance(hook_input, dict) else None)
        if hook_input is None:
            raise MeterError("hook stdin is empty or not JSON")
        reading, text, api_error = measure(hook_input, environ, source)
    except MeterError as exc:
        _safe_record(state_dir, None, str(exc))
        return 0
    except Exception as exc:  # a bug must not block the worker either; it is counted
        _safe_record(state_dir, None, f"{type(exc).__name__}: {exc}")
        return 0
    _safe_record(state_dir, reading, api_error)
    if text is not None:
        try:
            sys.stdout.write(hook_output(text) + "\n")
            sys.stdout.flush()
        except OSError:
            pass
    return 0


def _safe_record(state_dir: str | None, reading: dict[str, Any] | None, error: str | None) -> None:
    try:  # noqa: SIM105 - contextlib costs an import on the hot path
        record(state_dir, reading, error)
    except Exception:  # recording is best effort; the worker comes first
        pass
