"""``unattended hook context-meter``: how full is this worker's context window?

Claude Code runs this after every tool call of every worker (a PostToolUse hook given through
``--settings``), so it is dispatched from ``supervisor.entry`` before the CLI framework loads,
and imports only ``os``, ``sys``, ``time``, ``fcntl`` and the C half of ``json``: typer,
pydantic and rich cost 60-200 ms to import. It reads only the tail of the
transcript. ``supervisor/hook_script.py`` runs it under ``python -I -S``, skipping ``site`` and
never putting the worker's directory on ``sys.path``: see
``supervisor.worker_settings.hook_command``.

The reading is the latest main-chain assistant message's usage (input + cache creation + cache
read tokens): what the last request sent. Sidechain (subagent) lines have their own context and
are skipped; nothing before the last ``compact_boundary`` counts. Above the warn threshold the
worker is told to finish its step; above the stop threshold to write handoff notes, commit and
end. Both thresholds are lowered to act before the CLI compacts by itself (at 83.5 % of a 200k
window, ``contracts.context_window.auto_compact_point``), and the window is the one of the model
the worker really runs: the stream's init event names it (the daemon cannot know the CLI's
default model before the first worker starts) unless the user pinned a window. The hook fails
open (exit 0, no output) but counts every failure in ``.unattended/context-meter.json``, which
is also the live reading ``budget check`` and ``step`` use inside a worker.
"""

from __future__ import annotations

import os
import sys
import time

from unattended.contracts.names import (
    ENV_CONTEXT_SOURCE,
    ENV_CONTEXT_WINDOW,
    ENV_DEADLINE,
    ENV_DEADLINE_WARN_S,
    ENV_ITERATION,
    ENV_PROJECT,
    ENV_RECORDS_DIR,
    ENV_STATE_DIR,
    ENV_STOP_PCT,
    ENV_WARN_PCT,
    ENV_WINDOW_PINNED,
    HANDOFF_FILE_NAME,
    METER_FILE_NAME,
    METER_LOCK_NAME,
    STATE_DIR_NAME,
)
from unattended.safety.bands import band_of
from unattended.supervisor.hook.transcript_tail import (
    MeterError,
    as_int,
    dumps,
    latest_context,
    loads,
    wait_for_line,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~4 ms to import; annotations are strings here
    from typing import Any

INIT_HEAD_BYTES = 256 * 1024  # the init event is among the first lines of the worker's stdout
SCHEMA_VERSION = 1
DEFAULT_WARN_PCT = 70.0
DEFAULT_STOP_PCT = 85.0
DEFAULT_DEADLINE_WARN_S = 600.0

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

DEADLINE_TEXT = (
    "unattended: the run's deadline is {at}, in about {minutes} minutes, and this worker is "
    "ended then. Commit what you have now, leave the work tree clean, and finish without "
    "starting anything new."
)


# ----- the hook ----------------------------------------------------------------------------


def _state_dir(environ: dict[str, str], hook_input: dict[str, Any] | None) -> str | None:
    if environ.get(ENV_STATE_DIR):
        return environ[ENV_STATE_DIR]
    if environ.get(ENV_PROJECT):
        return os.path.join(environ[ENV_PROJECT], STATE_DIR_NAME)
    cwd = hook_input.get("cwd") if isinstance(hook_input, dict) else None
    if isinstance(cwd, str) and os.path.isdir(os.path.join(cwd, STATE_DIR_NAME)):
        return os.path.join(cwd, STATE_DIR_NAME)
    return None


def _float_env(environ: dict[str, str], name: str, default: float) -> float:
    try:
        return float(environ[name])
    except (KeyError, ValueError):
        return default


def _init_model(environ: dict[str, str], state_dir: str | None) -> str | None:
    """The model the stream's init event names (``claude-opus-4-8[1m]``…), read from the head
    of this iteration's stdout log, which the daemon writes as the worker prints it."""
    iteration = environ.get(ENV_ITERATION, "")
    records = environ.get(ENV_RECORDS_DIR) or state_dir
    if not records or not iteration.isdigit():
        return None
    path = os.path.join(records, "iterations", f"{int(iteration):04d}.jsonl")
    try:
        with open(path, "rb") as f:
            head = f.read(INIT_HEAD_BYTES)
    except OSError:
        return None
    for raw in head.split(b"\n"):
        if b'"init"' not in raw or b'"model"' not in raw:
            continue
        try:
            event = loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(event, dict) and event.get("subtype") == "init":
            model = event.get("model")
            return model if isinstance(model, str) and model else None
    return None


def _window(environ: dict[str, str], model: str | None, init_model: str | None = None) -> int:
    """The user's pinned window, else the window of the model the init event names, else the
    daemon's estimate, else the table's window for the transcript's model."""
    from unattended.contracts.context_window import table_window  # stdlib-only, no re

    pinned = environ.get(ENV_WINDOW_PINNED) == "1"
    if init_model and not pinned:
        return table_window(init_model)
    try:
        window = int(environ[ENV_CONTEXT_WINDOW])
        if window > 0:
            return window
    except (KeyError, ValueError):
        pass
    return table_window(model)

def _iteration(environ: dict[str, str]) -> int | None:
    value = environ.get(ENV_ITERATION, "")
    return int(value) if value.isdigit() else None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def deadline_text(environ: dict[str, str]) -> str | None:
    """The "commit and finish" message when the run's deadline is within the warning time."""
    deadline = _float_env(environ, ENV_DEADLINE, 0.0)
    warn_s = _float_env(environ, ENV_DEADLINE_WARN_S, DEFAULT_DEADLINE_WARN_S)
    left = deadline - time.time()
    if deadline <= 0 or warn_s <= 0 or left > warn_s:
        return None
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline))
    return DEADLINE_TEXT.format(at=at, minutes=max(0, int(left // 60)))


def record(
    state_dir: str | None,
    reading: dict[str, Any] | None,
    error: str | None,
    claim_deadline: str | None = None,
) -> bool:
    """Add one reading or one failure to context-meter.json (locked read-modify-write, atomic).

    With ``claim_deadline`` (an iteration number), also claim the one-time deadline warning for
    that iteration: True when this call claimed it (no other hook call of it did before)."""
    if not state_dir:
        return False
    import fcntl

    # The standard-library half of records.fsio: the state dir is walked without following a
    # symlink, and no file is written through one (a repository may plant them).
    from unattended.supervisor.records.fsio import (
        atomic_write,
        open_private_file,
        read_private_bytes,
    )

    target = os.path.join(state_dir, METER_FILE_NAME)
    lock_fd = open_private_file(
        os.path.join(state_dir, METER_LOCK_NAME), os.O_RDWR | os.O_CREAT
    )
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            data = loads(read_private_bytes(target))
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
        if error is not None:
            data["failures"] += 1
            data["last_error"], data["last_error_at"] = error[:500], _now()
        claimed = claim_deadline is not None and data.get("deadline_warned") != claim_deadline
        if claimed:
            data["deadline_warned"] = claim_deadline
        data["updated_at"] = _now()
        atomic_write(target, dumps(data) + "\n")  # a full disk leaves no temp file behind
    finally:
        os.close(lock_fd)  # releases the lock
    return claimed


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
            from unattended.supervisor.hook.api import api_tokens

            counted = api_tokens(path, model)
            if counted > tokens:
                tokens, used_source = counted, "api"
        except Exception as exc:  # fail open: the transcript reading stands
            api_error = f"api: {type(exc).__name__}: {exc}"
    from unattended.contracts.context_window import auto_compact_point, bands_before_compaction

    state_dir = _state_dir(environ, hook_input)
    init_model = _init_model(environ, state_dir)
    window = _window(environ, model, init_model)
    compact_at = auto_compact_point(window, environ)
    warn, stop = bands_before_compaction(
        window,
        _float_env(environ, ENV_WARN_PCT, DEFAULT_WARN_PCT),
        _float_env(environ, ENV_STOP_PCT, DEFAULT_STOP_PCT),
        compact_at,
    )
    pct = tokens / window * 100
    band = band_of(pct, warn, stop)
    session = hook_input.get("session_id")
    reading = {
        "tokens": tokens,
        "percent": round(pct, 1),
        "band": band,
        "window": window,
        "session_id": session if isinstance(session, str) else None,
        "model": init_model or model,
        "warn_pct": warn,
        "stop_pct": stop,
        "compact_at": compact_at,
        "iteration": _iteration(environ),
        "source": used_source,
        "compacted": compacted,
        "time": _now(),
    }
    text = None
    if band == "warn":
        text = WARN_TEXT.format(pct=pct, tokens=tokens, window=window, stop=stop)
    elif band == "stop":
        state_dir = _state_dir(environ, hook_input)
        handoff = os.path.join(state_dir or STATE_DIR_NAME, HANDOFF_FILE_NAME)
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
    near_deadline = deadline_text(environ)
    claim = (environ.get(ENV_ITERATION) or "?") if near_deadline else None
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
        if _safe_record(state_dir, None, str(exc), claim):
            _say(near_deadline)
        return 0
    except Exception as exc:  # a bug must not block the worker either; it is counted
        if _safe_record(state_dir, None, f"{type(exc).__name__}: {exc}", claim):
            _say(near_deadline)
        return 0
    if _safe_record(state_dir, reading, api_error, claim):
        text = near_deadline if text is None else f"{near_deadline}\n\n{text}"
    _say(text)
    return 0


def _say(text: str | None) -> None:
    if text is None:
        return
    try:
        sys.stdout.write(hook_output(text) + "\n")
        sys.stdout.flush()
    except OSError:
        pass


def _safe_record(
    state_dir: str | None,
    reading: dict[str, Any] | None,
    error: str | None,
    claim_deadline: str | None = None,
) -> bool:
    try:
        return record(state_dir, reading, error, claim_deadline)
    except Exception:  # recording is best effort; the worker comes first
        return False
