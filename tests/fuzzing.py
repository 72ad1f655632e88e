"""Bad versions of every file unattended reads, for the fuzz tests (issue 13 §8).

One mutation function per format (JSON, JSON lines, TOML) turns a valid file into a damaged one:
truncated, not UTF-8, nested 100,000 deep, a value swapped for one of the wrong type or out of
any range, bytes flipped... Driven by a ``random.Random``, so hypothesis (``st.randoms()``) and
the crash counter (``python -m tests.fuzz_count``, a fixed seed per case) share the same cases.

Every pid in a mutated file names no process (above Linux's largest pid_max): a fuzzed
state.json must never make ``stop`` signal a real process.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

DEAD_PID = 4_194_400  # above PID_MAX_LIMIT (2**22): never a live process

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**63),
    10**30,
    1e308,
    -1e308,
    0.5,
    "",
    "x" * 10_000,
    "\x00\x1b[2J",
    "../../../etc/passwd",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-13-45T99:99:99Z",
    "not a date",
    [],
    {},
    [1, "a", None],
    {"a": {"b": [1, 2, {"c": None}]}},
]
# Raw JSON text no json.dumps produces: non-finite numbers, ints past the 4300-digit limit.
ODD_RAW = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000, "[" * 2000 + "]" * 2000]
DEEP = 100_000


def utc_iso(delta_s: float = 0.0) -> str:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=delta_s)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document (keys and indexes)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _set(doc: Any, path: tuple, value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


def _delete(doc: Any, path: tuple) -> None:
    for step in path[:-1]:
        doc = doc[step]
    del doc[path[-1]]


def _safe_pid(path: tuple, value: Any) -> Any:
    last = path[-1] if path else ""
    if isinstance(last, str) and last.endswith("pid") and isinstance(value, int):
        return DEAD_PID + abs(value) % 1000
    return value


def _swap_value(doc: Any, rng: random.Random) -> bytes:
    paths = _paths(doc)
    if not paths:
        return json.dumps(rng.choice(ODD_VALUES)).encode()
    path = rng.choice(paths)
    if rng.random() < 0.3:
        marker = "@@RAW@@"
        _set(doc, path, marker)
        raw = rng.choice(ODD_RAW)
        return json.dumps(doc).replace(json.dumps(marker), raw, 1).encode()
    _set(doc, path, _safe_pid(path, rng.choice(ODD_VALUES)))
    return json.dumps(doc).encode()


def _flip_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if buf:
            pos = rng.randrange(len(buf))
            if not chr(buf[pos]).isdigit():  # digits stay digits: a pid stays a dead pid
                buf[pos] = rng.randrange(256)
    return bytes(buf)


def mutate_json(valid: str, rng: random.Random) -> bytes:
    """One damaged variant of a valid JSON document (an object)."""
    data = valid.encode()
    kind = rng.randrange(12)
    if kind == 0:
        return data[: rng.randrange(len(data))]
    if kind == 1:
        pos = rng.randrange(len(data))
        return (
            data[:pos]
            + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"])
            + data[pos:]
        )
    if kind == 2:
        depth = rng.choice([1000, DEEP])
        if rng.random() < 0.5:
            return b"[" * depth + b"]" * depth
        doc = json.loads(valid)
        key = rng.choice(list(doc))
        doc[key] = "@@DEEP@@"
        nested = '{"a":' * depth + "1" + "}" * depth
        return json.dumps(doc).replace('"@@DEEP@@"', nested).encode()
    if kind in (3, 4, 5, 6):
        return _swap_value(json.loads(valid), rng)
    if kind == 7:
        doc = json.loads(valid)
        paths = _paths(doc)
        if paths:
            _delete(doc, rng.choice(paths))
        return json.dumps(doc).encode()
    if kind == 8:
        return rng.choice([b"", b"[]", b"null", b"1", b'"s"', b"{}", b" \n", b"{"])
    if kind == 9:
        return rng.randbytes(rng.randint(1, 512))
    if kind == 10:
        return rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\x00"]) + data
    return _flip_bytes(data, rng)


def mutate_jsonl(valid_lines: list[str], rng: random.Random) -> bytes:
    """Valid lines with one or more damaged (or extra, or cut) lines among them."""
    lines = [line.encode() for line in valid_lines]
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        lines[index] = mutate_json(valid_lines[index], rng).replace(b"\n", b" ")
    data = b"\n".join(lines) + b"\n"
    if rng.random() < 0.2:
        data = data[: rng.randrange(len(data))]
    return data


TOML_ODD = [
    '"x"',
    "-1",
    "0",
    "inf",
    "nan",
    "-inf",
    "1e400",
    "99999999999999999999",
    "9223372036854775807",
    "true",
    "[]",
    "[1, 2]",
    '["a", 1]',
    "{}",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    '"' + "x" * 10_000 + '"',
]
TOML_KEYS = [
    "hours",
    "max_iterations",
    "max_cost_usd",
    "max_tokens",
    "worker_timeout",
    "grace_seconds",
    "keep_runs",
    "context_warn_pct",
    "model",
    "prompt",
    "prompt_file",
    "dirty_whitelist",
    "protected_branches",
    "snapshot_ignored",
    "claude_bin",
    "on_limit",
    "escalate_after",
    "max_quota_pct",
    "context_window",
    "unknown_key",
]


def mutate_toml(valid: str, rng: random.Random) -> bytes:
    """One damaged variant of a valid settings file."""
    data = valid.encode()
    kind = rng.randrange(9)
    if kind == 0:
        return data[: rng.randrange(len(data))]
    if kind == 1:
        pos = rng.randrange(len(data))
        return data[:pos] + rng.choice([b"\xff", b"\xc3\x28", b"\x80"]) + data[pos:]
    if kind == 2:
        depth = rng.choice([1000, DEEP])
        key = rng.choice(TOML_KEYS)
        inner = rng.choice(["[" * depth + "]" * depth, "{ a = " * depth + "1" + " }" * depth])
        return f"{key} = {inner}\n".encode()
    if kind in (3, 4, 5):
        lines = [
            f"{rng.choice(TOML_KEYS)} = {rng.choice(TOML_ODD)}" for _ in range(rng.randint(1, 3))
        ]
        return (valid + "\n".join(lines) + "\n").encode()
    if kind == 6:
        return rng.choice([b"[hours]\na = 1\n", b"hours = 1\nhours = 2\n", b"= 1\n", b"[[x]]\n"])
    if kind == 7:
        return rng.randbytes(rng.randint(1, 512))
    return _flip_bytes(data, rng)


# ----- valid files to start from -------------------------------------------------------------


def valid_state(project: str, status: str = "running") -> str:
    return json.dumps(
        {
            "schema_version": 1,
            "run_id": "20261123T031209Z",
            "status": status,
            "pid": DEAD_PID,
            "pid_create_time": 1.0,
            "project": project,
            "started_at": utc_iso(-300),
            "updated_at": utc_iso(),
            "deadline": utc_iso(86400),
            "iteration": 3,
            "max_iterations": 200,
            "cost_usd": 1.25,
            "worker_pid": DEAD_PID + 1,
            "worker_started_at": utc_iso(-10),
            "model": "claude-sonnet-4-6",
            "settings": {"hours": 24.0, "max_iterations": 200, "max_cost_usd": 5.0},
            "last_iteration": {"number": 3, "outcome": "progress", "reason": "committed"},
        }
    )


def valid_telemetry(run_id: str = "20261123T031209Z") -> list[str]:
    return [
        json.dumps(
            {
                "schema_version": 1,
                "time": utc_iso(-300 + 60 * n),
                "run_id": run_id,
                "iteration": n,
                "model": "claude-sonnet-4-6",
                "duration_s": 42.5,
                "exit_code": 0,
                "outcome": "progress",
                "reason": "committed",
                "input_tokens": 1000,
                "output_tokens": 500,
                "total_cost_usd": 0.25,
                "context_peak_tokens": 50_000,
                "context_window": 200_000,
                "context_pct": 25.0,
                "context_band": "normal",
                "commits": 1,
                "steps": [{"step": 1, "desc": "tests", "status": "OK"}],
            }
        )
        for n in (1, 2, 3)
    ]


def valid_budget() -> str:
    return json.dumps(
        {
            "schema_version": 1,
            "budget": 100_000,
            "used": 1000,
            "reserved": 500,
            "labels": {"step-1": {"used": 1000, "reserved": 500}},
            "created_at": utc_iso(-600),
            "updated_at": utc_iso(),
        }
    )


def valid_control() -> str:
    return json.dumps(
        {
            "schema_version": 1,
            "request_id": "abc123",
            "requested_at": utc_iso(),
            "hours": 30,
            "max_iterations": 300,
        }
    )


def valid_registry(project: str) -> str:
    return json.dumps(
        {
            "schema_version": 1,
            "project": project,
            "pid": DEAD_PID,
            "pid_create_time": 1.0,
            "run_id": "20261123T031209Z",
            "started_at": utc_iso(-300),
        }
    )


VALID_TOML = 'hours = 2\nmax_iterations = 5\nmodel = "sonnet"\ndirty_whitelist = ["PROMPT.md"]\n'
