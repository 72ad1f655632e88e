"""The hook's JSON (the C half of ``json`` without importing ``json``) agrees with ``json``."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unattended.supervisor.hook.transcript_tail import dumps, loads, parse_line

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(values)
def test_round_trip_matches_json(value: object) -> None:
    text = json.dumps(value, separators=(",", ":"))
    assert dumps(value) == text
    assert loads(text) == value
    assert loads(json.dumps(value, indent=2).encode()) == value


def test_constants_and_whitespace() -> None:
    assert loads(' \n{"a": NaN, "b": Infinity, "c": -Infinity}\r\n')["b"] == math.inf
    assert math.isnan(loads("NaN"))
    assert dumps(float("nan")) == "null" and dumps(math.inf) == "null"
    assert dumps({"k": "é✅"}) == '{"k":"\\u00e9\\u2705"}'
    assert dumps((1, "x")) == '[1,"x"]'


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        '{"a":{"b":"x',
        '{"a":1',
        "[1,",
        "tru",
        '{"a":1}}',
        '{"a":1} x',
        "{'a': 1}",
        '"\\x"',
        '"tab\there"',
        b"\xff\xfe",
    ],
)
def test_bad_json_is_a_value_error(bad: str | bytes) -> None:
    with pytest.raises(ValueError):
        loads(bad)
    assert parse_line(bad.encode() if isinstance(bad, str) else bad) is None
    # The error path leaves the parser working.
    assert loads('{"ok": [1, 2.5, null]}') == {"ok": [1, 2.5, None]}


def test_deep_nesting_is_not_a_crash() -> None:
    assert parse_line(b"[" * 100_000 + b"]" * 100_000) is None  # RecursionError, caught
    assert parse_line(b'{"a": 1}') == {"a": 1}
