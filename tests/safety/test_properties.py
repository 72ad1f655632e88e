"""Property tests (hypothesis) for the pure rules in ``safety/`` (issue 4 "Tests")."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from contracts.iteration import IterationRecord
from contracts.status import Outcome
from safety.api_errors import classify_text, parse_reset_time
from safety.backoff import MAX_API_BACKOFF_S, api_backoff, crash_backoff, storm_wait_until
from safety.budget import alert_level, budget_check, threshold_tokens
from safety.classify import classify, normalise_error
from safety.decide import decide, gate, gutter_state
from safety.markers import find_marker
from safety.runway import RunwayEstimate
from safety.verdict import VerdictKind
from tests.safety.records import HOUR, T0, facts, limits, rec, renumber

settings.register_profile("safety", deadline=None, max_examples=150)
settings.load_profile("safety")

GOING_ON = (VerdictKind.CONTINUE, VerdictKind.WAIT)
N = 5  # gutter_iterations by default

# --- strategies -----------------------------------------------------------------------------------

# One line of prose: any characters but line breaks, never a protocol marker by accident.
prose_line = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=60
).filter(lambda s: "UNATTENDED_" not in s)
prose = st.lists(prose_line, max_size=6).map("\n".join)
# Lines that do not open a code fence (so a marker line after them is outside any fence).
plain_line = prose_line.filter(lambda s: not s.strip().startswith(("```", "~~~")))
padding = st.text(" \t", max_size=3)

KINDS: dict[str, IterationRecord] = {
    "progress": rec(progress=True, commits=1),
    "no_progress": rec(),
    "question": rec(result_text="Which approach do you prefer?"),
    "silent": rec(tool_calls=0, result_text="All done, everything works."),
    "failed": rec(saw_result=False, exit_code=1, duration=60, last_stderr_line="Traceback 12"),
    "other_failure": rec(saw_result=False, exit_code=2, duration=60, last_stderr_line="KeyError"),
    "crash": rec(saw_result=False, exit_code=1, duration=1, last_stderr_line="died"),
    "denied": rec(permission_denials=["Bash"]),
    "timeout": rec(ended_by="timeout", saw_result=False, exit_code=-9, duration=3600),
    "rate_limited": rec(
        is_error=True, exit_code=1, api_error_status=429, result_text="API Error: Request rejected"
    ),
    "overloaded": rec(is_error=True, exit_code=1, api_error_status=529, result_text="API Error"),
    "context": rec(is_error=True, exit_code=1, result_text="Prompt is too long"),
}
WAITING = {"rate_limited", "overloaded"}
NOT_PROGRESS = sorted(set(KINDS) - {"progress"})
COUNTED = sorted(set(NOT_PROGRESS) - WAITING)

kind_names = st.sampled_from(sorted(KINDS))
histories = st.lists(kind_names, max_size=14).map(lambda names: [KINDS[n] for n in names])


def history_of(records: list[IterationRecord]) -> tuple[IterationRecord, ...]:
    return renumber(records)


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

word = st.text("ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ:=!", min_size=1, max_size=10)
segment = st.text("abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..")
)
VARIABLES = [
    st.integers(0, 10**12).map(str),
    st.floats(0, 1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    st.lists(segment, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
    st.lists(segment, min_size=2, max_size=4).map("/".join),
    st.binary(min_size=4, max_size=20).map(lambda b: b.hex()),
    st.binary(min_size=4, max_size=8).map(lambda b: "0x" + b.hex()),
    st.uuids().map(str),
    st.from_regex(r"(req|msg|toolu)_01[A-Za-z0-9]{8,24}", fullmatch=True),
]


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


@given(
    errors=st.lists(st.tuples(st.integers(0, 10**9), segment, st.uuids()), min_size=N, max_size=N)
)
def test_the_same_failure_n_times_is_stuck(errors: list[tuple[int, str, object]]) -> None:
    records = [
        rec(
            saw_result=False,
            exit_code=1,
            duration=30,
            last_stderr_line=f"AssertionError in /src/{path}/t.py line {line} run {uid}",
        )
        for line, path, uid in errors
    ]
    verdict = decide(facts(history_of(records)), limits())
    assert verdict.kind is VerdictKind.STUCK
    assert verdict.reason.startswith(f"the same failure {N} times in a row")


# --- decide: caps ---------------------------------------------------------------------------------


@given(
    history=histories.filter(bool),
    over=st.floats(0, 48 * HOUR, allow_nan=False),
    which=st.sampled_from(["deadline", "iterations", "cost", "tokens"]),
    stop=st.booleans(),
)
def test_nothing_goes_on_once_a_cap_is_reached(
    history: list[IterationRecord], over: float, which: str, stop: bool
) -> None:
    records = history_of(history)
    lim = limits(max_cost_usd=5.0, max_tokens=1_000_000)
    now, cost, tokens = T0 + HOUR, 0.0, 0
    if which == "deadline":
        now = lim.deadline + over
    elif which == "iterations":
        lim = limits(max_iterations=len(records))
    elif which == "cost":
        cost = 5.0 + over / 1000
    else:
        tokens = 1_000_000 + int(over)
    run = facts(records, now=now, cost=cost, tokens=tokens, stop_requested=stop)
    assert decide(run, lim).kind not in GOING_ON
    assert gate(run, lim, [], None).kind not in GOING_ON


@given(history=histories.filter(bool), now=st.floats(T0, T0 + 23 * HOUR, allow_nan=False))
def test_a_wait_always_ends_before_the_deadline(history: list[IterationRecord], now: float) -> None:
    run = facts(history_of(history), now=now)
    lim = limits()
    verdict = decide(run, lim)
    if verdict.kind is VerdictKind.WAIT:
        assert verdict.wait_until is not None
        assert now <= verdict.wait_until < lim.deadline
    else:
        assert verdict.wait_until is None
    assert verdict.reason


# --- decide: the gutter ---------------------------------------------------------------------------


@given(before=histories, after=st.lists(st.sampled_from(NOT_PROGRESS), max_size=N - 1))
def test_git_progress_resets_the_gutter(before: list[IterationRecord], after: list[str]) -> None:
    records = history_of([*before, KINDS["progress"], *(KINDS[name] for name in after)])
    run = facts(records)
    state = gutter_state(run, limits())
    counted = sum(name not in WAITING for name in after)
    assert state.no_progress == counted
    assert max(state.crashes, state.denials, state.same_failure) <= counted
    if not after:
        assert state.reason is None
    assert decide(run, limits()).kind in GOING_ON


@given(names=st.lists(st.sampled_from(COUNTED), min_size=N, max_size=N), waits=st.data())
def test_n_counted_iterations_without_progress_end_the_run(
    names: list[str], waits: st.DataObject
) -> None:
    records: list[IterationRecord] = []
    for name in names:
        records += [
            KINDS[w] for w in waits.draw(st.lists(st.sampled_from(sorted(WAITING)), max_size=2))
        ]
        records.append(KINDS[name])
    verdict = decide(facts(history_of(records)), limits())
    assert verdict.kind in (VerdictKind.STUCK, VerdictKind.BLOCKED)


@given(
    escalated_after=st.integers(1, 4),
    names=st.lists(st.sampled_from(COUNTED), min_size=1, max_size=N - 1),
)
def test_escalation_resets_the_no_progress_count(escalated_after: int, names: list[str]) -> None:
    before = [KINDS["no_progress"]] * escalated_after
    records = history_of([*before, *(KINDS[n] for n in names)])
    run = facts(records, escalated_at=escalated_after)
    assert gutter_state(run, limits()).no_progress == len(names)
    assert decide(run, limits(escalate_after=escalated_after)).kind in GOING_ON


@given(count=st.integers(1, N - 1), base=st.floats(0, 400, allow_nan=False))
def test_crash_loop_backoff_doubles_capped_at_300(count: int, base: float) -> None:
    records = history_of([KINDS["crash"]] * count)
    run = facts(records)
    verdict = decide(run, limits(crash_backoff_s=base))
    assert verdict.kind is VerdictKind.WAIT and verdict.wait_until is not None
    assert verdict.wait_until - run.now == pytest.approx(
        min(300.0, base * 2 ** (count - 1)), abs=1e-6
    )
    assert crash_backoff(count + 1, base) == min(300.0, 2 * crash_backoff(count, base))


@given(n=st.integers(1, 8), base=st.floats(0, 60, allow_nan=False))
def test_crash_loop_gives_up_after_n(n: int, base: float) -> None:
    run = facts(history_of([KINDS["crash"]] * n))
    verdict = decide(run, limits(gutter_iterations=n, crash_backoff_s=base))
    assert verdict.kind is VerdictKind.STUCK and verdict.reason.startswith("crash loop")


@given(
    tool=st.from_regex(r"[A-Z][A-Za-z]{1,12}(\([a-z:* ]{1,10}\))?", fullmatch=True),
    extra=st.lists(
        st.lists(st.sampled_from(["Write", "Edit", "WebFetch"]), max_size=2), min_size=N, max_size=N
    ),
)
def test_the_same_denial_n_times_is_blocked(tool: str, extra: list[list[str]]) -> None:
    records = [rec(permission_denials=[tool, *more]) for more in extra]
    verdict = decide(facts(history_of(records)), limits())
    assert verdict.kind is VerdictKind.BLOCKED
    assert verdict.reason.startswith(f"the worker needs permission to run {tool}")


# --- decide: API trouble --------------------------------------------------------------------------


def _usage_limit(resets_at: float | None) -> IterationRecord:
    return rec(
        is_error=True,
        exit_code=1,
        tool_calls=0,
        result_text="You've hit your session limit",
        rate_limit={"status": "rejected", "resets_at": resets_at, "limit_type": "five_hour"},
    )


@given(prefix=histories, after=st.floats(0, 30 * 24 * HOUR, allow_nan=False))
def test_usage_limit_reset_past_the_deadline_caps(
    prefix: list[IterationRecord], after: float
) -> None:
    lim = limits()
    records = history_of([*prefix, _usage_limit(lim.deadline + after)])
    verdict = decide(facts(records, now=T0 + HOUR), lim)
    assert verdict.kind is VerdictKind.CAPPED and "usage limit" in verdict.reason


@given(prefix=histories, reset_in=st.floats(1, 20 * HOUR, allow_nan=False))
def test_usage_limit_waits_until_reset_plus_margin(
    prefix: list[IterationRecord], reset_in: float
) -> None:
    now = T0 + HOUR
    records = history_of([*prefix, _usage_limit(now + reset_in)])
    verdict = decide(facts(records, now=now), limits())
    assert verdict.kind is VerdictKind.WAIT
    assert verdict.wait_until == now + reset_in + 120


@given(prefix=histories, resets_at=st.one_of(st.none(), st.floats(T0, T0 + 99 * HOUR)))
def test_on_limit_stop_caps_with_usage_limit(
    prefix: list[IterationRecord], resets_at: float | None
) -> None:
    records = history_of([*prefix, _usage_limit(resets_at)])
    verdict = decide(facts(records, now=T0 + HOUR), limits(on_limit="stop"))
    assert verdict.kind is VerdictKind.CAPPED and "usage limit" in verdict.reason


@given(
    prefix=histories,
    text=st.sampled_from(
        ["Invalid API key · Fix external API key", "Not logged in · Please run /login"]
    ),
    status=st.sampled_from([None, 401]),
)
def test_auth_error_fails(prefix: list[IterationRecord], text: str, status: int | None) -> None:
    record = rec(is_error=True, exit_code=1, result_text=text, api_error_status=status)
    verdict = decide(facts(history_of([*prefix, record]), now=T0 + HOUR), limits())
    assert verdict.kind is VerdictKind.FAILED
    assert verdict.kind.status.exit_code == 7


@given(
    prefix=histories,
    record=st.sampled_from(
        [
            rec(is_error=True, exit_code=1, result_text="Prompt is too long"),
            rec(is_error=True, exit_code=1, api_error_status=400, result_text="prompt is too long"),
            rec(is_error=True, exit_code=1, terminal_reason="prompt_too_long"),
        ]
    ),
)
def test_context_limit_is_not_a_failure(
    prefix: list[IterationRecord], record: IterationRecord
) -> None:
    records = history_of([*prefix, KINDS["progress"], record])
    verdict = decide(facts(records, now=T0 + HOUR), limits())
    assert verdict.kind is VerdictKind.CONTINUE
    assert verdict.outcome is not Outcome.FAILED
    assert "fresh session" in verdict.reason


@given(attempt=st.integers(1, 100), base=st.floats(0.1, 100), seed=st.integers(0, 10**6))
def test_api_backoff_doubles_with_jitter_capped(attempt: int, base: float, seed: int) -> None:
    delay = api_backoff(attempt, base, seed)
    raw = base * 2 ** (min(attempt, 64) - 1)
    assert min(MAX_API_BACKOFF_S, raw) <= delay <= min(MAX_API_BACKOFF_S, raw * 1.1)
    assert api_backoff(attempt + 1, base, seed + 1) >= delay


# --- gate: storm breaker, runway, quota -----------------------------------------------------------


@given(
    gaps=st.lists(st.integers(0, 40 * 64).map(lambda g: g / 64), max_size=60),
    per_minute=st.integers(1, 10),
)
def test_storm_breaker_never_allows_more_than_n_launches_in_any_minute(
    gaps: list[float], per_minute: int
) -> None:
    launches: list[float] = []
    now = T0
    for gap in gaps:
        now += gap
        slot = storm_wait_until(now, launches, per_minute)
        if slot is not None:
            assert slot > now
            now = slot
            assert storm_wait_until(now, launches, per_minute) is None
        launches.append(now)
    for end in launches:
        assert sum(end - 60 < t <= end for t in launches) <= per_minute


@given(
    cap=st.floats(0.5, 100),
    spent_pct=st.floats(0, 0.94),
    need=st.floats(0, 100),
)
def test_runway_refuses_exactly_when_the_prediction_crosses_the_cost_cap(
    cap: float, spent_pct: float, need: float
) -> None:
    spent = cap * spent_pct
    estimate = RunwayEstimate(1, need, 1.0, "high", "test")
    verdict = gate(facts(cost=spent), limits(max_cost_usd=cap), [], estimate)
    if need > cap - spent:
        assert verdict.kind is VerdictKind.CAPPED
        assert verdict.reason.startswith(
            f"cost cap: next iteration needs ~${need:.2f}, ${cap - spent:.2f} left"
        )
    else:
        assert verdict.kind is VerdictKind.CONTINUE


@given(
    utilization=st.floats(0, 1.5),
    max_pct=st.floats(1, 100),
    reset_in=st.floats(1, 20 * HOUR),
)
def test_quota_pacing_waits_for_the_windows_reset(
    utilization: float, max_pct: float, reset_in: float
) -> None:
    quota = {"five_hour": (utilization, T0 + reset_in)}
    verdict = gate(facts(quota=quota), limits(max_quota_pct=max_pct), [], None)
    if utilization * 100 >= max_pct:
        assert verdict.kind is VerdictKind.WAIT
        assert verdict.wait_until == T0 + reset_in + 120
    else:
        assert verdict.kind is VerdictKind.CONTINUE


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
