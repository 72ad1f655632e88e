"""`unattended start`'s options without the CLI framework, for ``entry``'s fast path.

typer costs ~50 ms of imports; ``start`` is run often and must return quickly. This parser
accepts exactly what the typer command accepts, converting values the way it does (click's
FLOAT and INT are Python's ``float`` and ``int``); anything else (``--help``, a typo, a bad
number, a missing value) returns None and goes through typer for its usual message.
tests/supervisor/cli/test_start_args.py keeps this table equal to the typer command's.
"""

from __future__ import annotations

from pathlib import Path

# Settings given on the command line: option name (with `_`) → value type.
VALUE_OPTIONS: dict[str, type] = {
    "hours": float,
    "max_iterations": int,
    "prompt": str,
    "prompt_file": str,
    "worker_timeout": float,
    "stall_timeout": float,
    "claude_bin": str,
    "model": str,
    "permission_mode": str,
    "allowed_tools": str,
    "done_when": str,
    "grace_seconds": float,
    "branch": str,
    "on_limit": str,
    "max_cost_usd": float,
    "max_tokens": int,
    "session_policy": str,
    "context_source": str,
    "escalate_model": str,
    "escalate_after": int,
    "max_quota_pct": float,
    "notify_cmd": str,
    "on_done": str,
    "on_done_also": str,
    "remote": str,
    "forge": str,
    "metrics_textfile": str,
    "start_stagger_s": float,
}
SETTING_FLAGS = ("allow_dirty",)  # a flag that sets a setting to True
# Flags about this invocation, not the run: option name → StartOptions field.
INVOCATION_FLAGS = {
    "foreground": "foreground",
    "dry_run": "dry_run",
    "resume": "resume",
    "resume_or_start": "resume_or_start",
    "json": "json_out",
}


def parse_start_args(args: list[str]) -> tuple[dict[str, object], dict[str, object]] | None:
    """(invocation fields incl. ``project``, setting values given) or None (let typer speak).

    Setting values hold every option, None where not given, like the typer command's locals.
    """
    invocation: dict[str, object] = {field: False for field in INVOCATION_FLAGS.values()}
    invocation["project"] = None
    invocation["run_id"] = None
    values: dict[str, object] = dict.fromkeys([*VALUE_OPTIONS, *SETTING_FLAGS])
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("--") or arg == "--":
            return None
        name, eq, inline = arg[2:].partition("=")
        key = name.replace("-", "_")
        if "_" in name:  # typer spells options with '-' only
            return None
        if key in INVOCATION_FLAGS or key in SETTING_FLAGS:
            if eq:
                return None
            if key in SETTING_FLAGS:
                values[key] = True
            else:
                invocation[INVOCATION_FLAGS[key]] = True
            continue
        if key not in ("project", "run_id") and key not in VALUE_OPTIONS:
            return None
        if eq:
            raw = inline
        elif rest:
            raw = rest.pop(0)
        else:
            return None
        if key == "project":
            invocation["project"] = Path(raw)
            continue
        if key == "run_id":
            invocation["run_id"] = raw
            continue
        try:
            values[key] = VALUE_OPTIONS[key](raw)
        except ValueError:
            return None
    return invocation, values
