"""Property tests (hypothesis) for the text rules: markers, outcomes, failure fingerprints,
reset times, backoffs and budget arithmetic."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import assume, given
from hypothesis import strategies as st

from tests.safety.records import rec
from tests.safety.strategies import (
    KINDS,
    VARIABLES,
    kind_names,
    padding,
    plain_line,
    prose,
    prose_line,
    word,
)
from unattended.contracts.status import Outcome
from unattended.safety.api_errors import classify_text, parse_reset_time
from unattended.safety.backoff import MAX_API_BACKOFF_S, api_backoff
from unattended.safety.budget import alert_level, budget_check, threshold_tokens
from unattended.safety.classify import classify, normalise_error
from unattended.safety.markers import find_marker

# --- markers --------------------------------------------------------------------------------------


@given(before=prose_line, after=prose_line)
def test_a_marker_inside_a_line_never_counts(before: str, after: str) -> None:
    assume((before + after).strip())
    assert find_marker(before + "UNATTENDED_DONE" + after) is None


@given(before=prose_line, after=prose_line)
def test_prose_around_a_marker_on_the_same_line_never_ends_the_run(before: str, after: str) -> None:
    assume(before.strip())
    for marker in ("UNATTENDED_DONE", "UNATTENDED_BLOCKED: need help"):
        assert find_marker(f"{before}{marker}{after}") is None
        assert find_marker(f"{before} {marker}{after}") is None


@given(lines=st.lists(plain_line, max_size=8), at=st.integers(0, 8), pad=padding, end=padding)
def test_a_marker_on_its_own_line_counts(lines: list[str], at: int, pad: str, end: str) -> None:
    at = min(at, len(lines))
    done = [*lines[:at], f"{pad}UNATTENDED_DONE{end}", *lines[at:]]
    assert find_marker("\n".join(done)) is not None
    assert find_marker("\n".join(done)).kind == "done"  # type: ignore[union-attr]
    blocked = [*lines[:at], f"{pad}UNATTENDED_BLOCKED: no key{end}", *lines[at:]]
    marker = find_marker("\r\n".join(blocked))
    assert marker is not None and marker.kind == "blocked" and marker.reason == "no key"


@given(text=st.text(max_size=300))
def test_a_found_marker_is_always_a_line_of_the_text(text: str) -> None:
    marker = find_marker(text)
    if marker is None:
        return
    lines = [line.strip() for line in re.split(r"\r\n|\r|\n", text)]
    if marker.kind == "done":
        assert "UNATTENDED_DONE" in lines
    else:
        assert any(line.startswith("UNATTENDED_BLOCKED:") for line in lines)


@given(
    text=prose,
    none=st.sampled_from(["none", "None", "NONE.", "n/a", "N/A", "nothing", "-", "", "nil!"]),
    label=st.sampled_from(["Blocker", "Blockers", "UNATTENDED_BLOCKED", "Blocked"]),
    pad=padding,
)
def test_blocker_none_never_blocks(text: str, none: str, label: str, pad: str) -> None:
    marker = find_marker(f"{text}\n{pad}{label}: {none}{pad}\n")
    assert marker is None or marker.kind != "blocked"


@given(
    lines=st.lists(prose_line, max_size=4),
    fence=st.sampled_from(["```", "~~~", "````", "```python"]),
)
def test_markers_inside_a_fenced_block_never_count(lines: list[str], fence: str) -> None:
    closing = fence.rstrip("python")
    inner = [line for line in lines if not line.strip().startswith(closing[0] * 3)]
    text = "\n".join(
        ["Output:", fence, *inner, "UNATTENDED_DONE", "UNATTENDED_BLOCKED: x", closing]
    )
    assert find_marker(text) is None


# --- classify -------------------------------------------------------------------------------------


@given(text=st.one_of(st.none(), st.text(max_size=200)))
def test_exit_zero_without_tool_calls_or_change_is_no_progress_whatever_it_says(
    text: str | None,
) -> None:
    assume(find_marker(text) is None)
    assert classify(rec(tool_calls=0, result_text=text))[0] is Outcome.NO_PROGRESS


@given(text=prose, tail=st.sampled_from(["?", "? ", "?)", "?**", "？"]), calls=st.integers(0, 50))
def test_a_final_question_without_marker_is_no_progress(text: str, tail: str, calls: int) -> None:
    result, reason = classify(rec(result_text=text + tail, tool_calls=calls))
    assert result is Outcome.NO_PROGRESS
    assert "question" in reason or calls == 0


@given(name=kind_names, progress=st.booleans())
def test_progress_is_only_ever_what_git_shows(name: str, progress: bool) -> None:
    record = KINDS[name]
    if progress != record.made_progress:
        update = {"git_after": rec(progress=progress).git_after}
        record = record.model_copy(update=update)
    outcome = classify(record)[0]
    if outcome is Outcome.PROGRESS:
        assert record.made_progress
    if outcome is Outcome.NO_PROGRESS:
        assert not record.made_progress


# --- failure fingerprints -------------------------------------------------------------------------


@given(
    data=st.data(),
    template=st.lists(st.one_of(word, st.just(None)), min_size=1, max_size=12),
)
def test_same_failure_modulo_numbers_paths_and_ids_has_one_fingerprint(
    data: st.DataObject, template: list[str | None]
) -> None:
    kinds = [data.draw(st.integers(0, len(VARIABLES) - 1)) for _ in template]

    def render() -> str:
        parts = [
            part if part is not None else data.draw(VARIABLES[kind])
            for part, kind in zip(template, kinds, strict=True)
        ]
        return " ".join(parts)

    assert normalise_error(render()) == normalise_error(render())


@given(attempt=st.integers(1, 100), base=st.floats(0.1, 100), seed=st.integers(0, 10**6))
def test_api_backoff_doubles_with_jitter_capped(attempt: int, base: float, seed: int) -> None:
    delay = api_backoff(attempt, base, seed)
    raw = base * 2 ** (min(attempt, 64) - 1)
    assert min(MAX_API_BACKOFF_S, raw) <= delay <= min(MAX_API_BACKOFF_S, raw * 1.1)
    assert api_backoff(attempt + 1, base, seed + 1) >= delay


# --- budgets and reset times ----------------------------------------------------------------------


@given(a=st.floats(0, 1e9), b=st.floats(0, 1e9), cap=st.floats(1e-3, 1e9))
def test_alert_level_is_monotone(a: float, b: float, cap: float) -> None:
    order = ["ok", "warn", "critical", "stop"]
    low, high = sorted((a, b))
    assert order.index(alert_level(low, cap)) <= order.index(alert_level(high, cap))


@given(
    tokens=st.integers(0, 10**7),
    budget=st.integers(1, 10**7),
    threshold=st.floats(20, 95),
)
def test_budget_check_passes_exactly_up_to_the_threshold(
    tokens: int, budget: int, threshold: float
) -> None:
    check = budget_check(tokens, budget, threshold)
    assert check.can_proceed == (tokens <= threshold_tokens(budget, threshold))
    assert check.message.startswith("✅ Token budget OK: " if check.can_proceed else "❌ Token")
    assert check.message.endswith(f"{tokens:,}/{check.threshold_tokens:,} tokens")


@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    which=st.sampled_from(["session", "weekly", "Opus", "usage"]),
)
def test_usage_limit_reset_round_trip(moment: datetime, which: str) -> None:
    moment = moment.replace(second=0, microsecond=0)
    hour = moment.hour % 12 or 12
    ampm = "am" if moment.hour < 12 else "pm"
    stamp = f"{moment:%b} {moment.day}, {moment.year}, {hour}:{moment:%M}{ampm} (UTC)"
    text = f"You've hit your {which} limit · resets {stamp}"
    reference = moment.timestamp() - 3600
    assert parse_reset_time(text, reference) == moment.timestamp()
    trouble = classify_text(text, reference)
    assert trouble is not None and trouble.kind == "usage_limit"
    assert trouble.resets_at == moment.timestamp()
