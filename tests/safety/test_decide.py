"""After an iteration: decide() and the gutter (issue 4 "Between iterations", issue 6 §4)."""

from __future__ import annotations

import pytest

from tests.safety.records import HOUR, T0, facts, limits, rec, renumber
from unattended.contracts.exit_codes import ExitCode
from unattended.contracts.settings import Settings
from unattended.contracts.status import Outcome, RunStatus
from unattended.safety.backoff import MAX_CRASH_BACKOFF_S, api_backoff, crash_backoff
from unattended.safety.decide import Limits, decide, gutter_state
from unattended.safety.verdict import VerdictKind

CONTINUE, WAIT, STUCK = VerdictKind.CONTINUE, VerdictKind.WAIT, VerdictKind.STUCK
BLOCKED, CAPPED, FAILED = VerdictKind.BLOCKED, VerdictKind.CAPPED, VerdictKind.FAILED

NO_PROGRESS = rec()
PROGRESS = rec(progress=True, commits=1)
CRASH = rec(saw_result=False, result_subtype=None, exit_code=1, duration=2, last_stderr_line="x")
DENIED = rec(permission_denials=["Bash"])
RATE_LIMITED = rec(
    is_error=True,
    exit_code=1,
    api_error_status=429,
    result_text="API Error: Request rejected (429) · slow down",
    tool_calls=0,
)


def run(*records: object, **fact_fields: object):  # type: ignore[no-untyped-def]
    """decide() over a history made of ``records`` (renumbered 1..n)."""
    limit_fields = fact_fields.pop("limits", {})
    history = renumber(list(records))  # type: ignore[arg-type]
    return decide(facts(history, **fact_fields), limits(**limit_fields))  # type: ignore[arg-type]


# --- terminal verdicts from the last iteration -------------------------------------------------


def test_done_blocked_and_their_exit_codes() -> None:
    done = run(rec(result_text="UNATTENDED_DONE"))
    assert (done.kind, done.outcome) == (VerdictKind.DONE, Outcome.DONE)
    assert done.kind.status.exit_code is ExitCode.DONE
    blocked = run(rec(result_text="UNATTENDED_BLOCKED: need a human"))
    assert blocked.kind is BLOCKED and blocked.reason == "the worker is blocked: need a human"
    assert blocked.kind.status.exit_code is ExitCode.BLOCKED


def test_done_when_passing_ends_the_run() -> None:
    verdict = run(NO_PROGRESS, done_when_passed=True)
    assert verdict.kind is VerdictKind.DONE and "--done-when" in verdict.reason


@pytest.mark.parametrize(
    "text", ["Blocker: none", "UNATTENDED_BLOCKED: none", "Blockers: none.\nAll good."]
)
def test_blocker_none_continues(text: str) -> None:
    assert run(rec(result_text=text, progress=True)).kind is CONTINUE


def test_stop_request() -> None:
    verdict = run(PROGRESS, stop_requested=True)
    assert verdict.kind is VerdictKind.STOPPED and verdict.outcome is Outcome.PROGRESS
    assert verdict.kind.status.exit_code is ExitCode.STOPPED
    # done still wins over a stop request: the work is finished either way
    assert run(rec(result_text="UNATTENDED_DONE"), stop_requested=True).kind is VerdictKind.DONE


def test_no_history() -> None:
    assert decide(facts(), limits()).kind is CONTINUE
    assert decide(facts(stop_requested=True), limits()).kind is VerdictKind.STOPPED
    assert decide(facts(now=T0 + 25 * HOUR), limits()).kind is CAPPED


# --- caps --------------------------------------------------------------------------------------


def test_iteration_cap() -> None:
    verdict = run(PROGRESS, PROGRESS, PROGRESS, limits={"max_iterations": 3})
    assert verdict.kind is CAPPED and verdict.reason == "iteration cap: 3 of 3 iterations used"
    assert verdict.kind.status.exit_code is ExitCode.CAPPED
    assert run(PROGRESS, PROGRESS, limits={"max_iterations": 3}).kind is CONTINUE


def test_hours_cap() -> None:
    verdict = run(PROGRESS, now=T0 + 24 * HOUR)
    assert verdict.kind is CAPPED
    assert verdict.reason == "hours cap: deadline 2030-03-18T17:46:40Z reached"


def test_cost_cap_stops_at_95_percent() -> None:
    cap = {"max_cost_usd": 2.0}
    assert run(PROGRESS, cost=1.89, limits=cap).kind is CONTINUE
    verdict = run(PROGRESS, cost=1.9, limits=cap)
    assert verdict.kind is CAPPED
    assert verdict.reason == "cost cap: $1.90 of $2.00 spent (95%, the run stops at 95%)"


def test_token_cap_stops_at_95_percent() -> None:
    cap = {"max_tokens": 1_000_000}
    assert run(PROGRESS, tokens=949_999, limits=cap).kind is CONTINUE
    verdict = run(PROGRESS, tokens=950_000, limits=cap)
    assert verdict.kind is CAPPED and verdict.reason.startswith("token cap: 950,000 of 1,000,000")


def test_done_outranks_caps() -> None:
    verdict = run(rec(result_text="UNATTENDED_DONE"), limits={"max_iterations": 1})
    assert verdict.kind is VerdictKind.DONE


# --- fatal -------------------------------------------------------------------------------------


def test_auth_error_fails_with_exit_7() -> None:
    verdict = run(
        rec(is_error=True, exit_code=1, result_text="Invalid API key · Fix external API key")
    )
    assert verdict.kind is FAILED
    assert verdict.kind.status is RunStatus.FAILED
    assert verdict.kind.status.exit_code is ExitCode.FAILED == 7
    assert verdict.reason.startswith("authentication failed: Invalid API key")


def test_missing_binary_fails_at_once() -> None:
    record = rec(spawn_error="claude: no such file (is the claude binary installed?)", duration=0)
    verdict = run(record)
    assert verdict.kind is FAILED and "claude binary" in verdict.reason


def test_full_disk_fails() -> None:
    verdict = run(rec(spawn_error="cannot create x: No space left on device", duration=0))
    assert verdict.kind is FAILED and verdict.reason.startswith("disk full")


# --- the gutter: no progress -------------------------------------------------------------------


def test_n_iterations_without_progress_is_stuck() -> None:
    assert run(*[NO_PROGRESS] * 4).kind is CONTINUE
    verdict = run(*[NO_PROGRESS] * 5)
    assert verdict.kind is STUCK
    assert verdict.reason.startswith("no progress in 5 iterations in a row")
    assert verdict.kind.status.exit_code is ExitCode.STUCK


def test_gutter_iterations_setting() -> None:
    assert run(NO_PROGRESS, NO_PROGRESS, limits={"gutter_iterations": 2}).kind is STUCK
    assert run(*[NO_PROGRESS] * 6, limits={"gutter_iterations": 7}).kind is CONTINUE


def test_progress_resets_the_count() -> None:
    assert run(*[NO_PROGRESS] * 4, PROGRESS, *[NO_PROGRESS] * 4).kind is CONTINUE
    assert run(*[NO_PROGRESS] * 4, PROGRESS, *[NO_PROGRESS] * 5).kind is STUCK


def test_a_worker_claiming_progress_without_git_change_counts_as_none() -> None:
    liar = rec(result_text="Fixed all 12 tests and committed.", tool_calls=30)
    assert run(*[liar] * 5).kind is STUCK
    silent = rec(tool_calls=0, result_text="Everything is done.")
    assert run(*[silent] * 5).kind is STUCK


def test_questions_count_as_no_progress() -> None:
    asker = rec(result_text="Should I refactor the parser first?")
    verdict = run(*[asker] * 5)
    assert verdict.kind is STUCK and "question" in verdict.reason


def test_graded_response_note_before_stuck_and_cleared_by_progress() -> None:
    first = run(NO_PROGRESS)
    assert first.kind is CONTINUE and first.prompt_note is None
    second = run(NO_PROGRESS, NO_PROGRESS)
    assert second.prompt_note is not None
    assert "the last 2 iterations changed nothing in git" in second.prompt_note
    assert "After 5 iterations without progress the run stops as stuck." in second.prompt_note
    assert run(NO_PROGRESS, NO_PROGRESS, PROGRESS).prompt_note is None


def test_note_quotes_the_repeated_error() -> None:
    fail = rec(exit_code=1, result_subtype="error_max_turns", result_text=None, duration=60)
    note = run(fail, fail, fail).prompt_note
    assert note is not None and 'The same error repeated 3 times: "result error_max_turns"' in note


def test_a_question_gets_an_answer_in_the_next_prompt() -> None:
    verdict = run(rec(result_text="Done with A. Shall I do B?", progress=True))
    assert verdict.kind is CONTINUE
    assert verdict.prompt_note is not None and "nobody is there to answer" in verdict.prompt_note


# --- the gutter: the same failure --------------------------------------------------------------


def _failing(line: str) -> object:
    return rec(
        saw_result=False, result_subtype=None, exit_code=1, duration=60, last_stderr_line=line
    )


def test_same_failure_fingerprint_n_times_is_stuck() -> None:
    errors = [f"TypeError at /src/m{i}.py:{i * 7}: bad operand 0x{i + 10:08x}" for i in range(5)]
    verdict = run(*[_failing(e) for e in errors])
    assert verdict.kind is STUCK
    assert verdict.reason.startswith("the same failure 5 times in a row: ")
    assert "TypeError" in verdict.reason


def test_changing_failures_are_not_the_same_failure() -> None:
    records = [_failing(e) for e in ("ImportError", "SyntaxError", "ImportError", "KeyError")]
    assert run(*records).kind is CONTINUE
    verdict = run(*records, _failing("ValueError"))
    assert verdict.kind is STUCK and verdict.reason.startswith("no progress in 5")


def test_repeated_timeouts_are_stuck_but_not_a_crash_loop() -> None:
    timeout = rec(ended_by="timeout", saw_result=False, exit_code=-9, duration=3600)
    verdict = run(*[timeout] * 5)
    assert verdict.kind is STUCK and "crash loop" not in verdict.reason


# --- the gutter: crash loop --------------------------------------------------------------------


def test_crash_loop_backs_off_doubling_then_stuck() -> None:
    delays = []
    for count in range(1, 5):
        verdict = run(*[CRASH] * count)
        assert verdict.kind is WAIT
        assert verdict.wait_until is not None
        delays.append(verdict.wait_until - facts(renumber([CRASH] * count)).now)
        assert f"({count} of 5)" in verdict.reason
    assert delays == [5.0, 10.0, 20.0, 40.0]
    verdict = run(*[CRASH] * 5)
    assert verdict.kind is STUCK and verdict.reason.startswith("crash loop: 5 workers in a row")


def test_crash_backoff_is_capped_at_five_minutes() -> None:
    verdict = run(*[CRASH] * 4, limits={"crash_backoff_s": 100.0, "gutter_iterations": 10})
    assert verdict.wait_until is not None
    assert verdict.wait_until - facts(renumber([CRASH] * 4)).now == MAX_CRASH_BACKOFF_S == 300.0


def test_crash_loop_broken_by_a_slow_failure_or_progress() -> None:
    slow = _failing("x")
    assert run(CRASH, CRASH, slow, CRASH).wait_until == pytest.approx(
        facts(renumber([CRASH] * 4)).now + 5.0
    )
    assert run(*[CRASH] * 4, PROGRESS, CRASH).kind is WAIT


# --- the gutter: permission denials ------------------------------------------------------------


def test_same_denial_n_times_is_blocked_naming_the_tool() -> None:
    assert run(*[DENIED] * 4).kind is CONTINUE
    verdict = run(*[DENIED] * 5)
    assert verdict.kind is BLOCKED
    assert verdict.reason.startswith("the worker needs permission to run Bash")


def test_denial_streak_keeps_the_common_tools() -> None:
    both = rec(permission_denials=["Write", "Bash"])
    verdict = run(both, DENIED, both, DENIED, both)
    assert verdict.kind is BLOCKED
    assert verdict.reason.startswith("the worker needs permission to run Bash (denied 5 times")


def test_different_denials_are_not_a_denial_streak() -> None:
    write = rec(permission_denials=["Write"])
    verdict = run(DENIED, write, DENIED, write, DENIED)
    assert verdict.kind is STUCK  # five iterations without progress all the same


def test_denied_but_progressing_is_not_blocked() -> None:
    assert run(*[rec(permission_denials=["Bash"], progress=True)] * 6).kind is CONTINUE


# --- API trouble -------------------------------------------------------------------------------


def test_rate_limit_waits_with_backoff_and_is_not_counted() -> None:
    verdict = run(RATE_LIMITED)
    assert verdict.kind is WAIT and verdict.outcome is Outcome.API_ERROR
    now = facts(renumber([RATE_LIMITED])).now
    assert verdict.wait_until is not None and 30.0 <= verdict.wait_until - now <= 33.0
    assert "attempt 1" in verdict.reason
    second = run(RATE_LIMITED, RATE_LIMITED)
    assert second.wait_until is not None
    assert 60.0 <= second.wait_until - facts(renumber([RATE_LIMITED] * 2)).now <= 66.0
    # service trouble neither counts for the gutter nor breaks a no-progress streak
    assert run(*[NO_PROGRESS] * 4, *[RATE_LIMITED] * 6).kind is WAIT
    assert run(*[NO_PROGRESS] * 2, RATE_LIMITED, *[NO_PROGRESS] * 2).kind is CONTINUE
    assert run(*[NO_PROGRESS] * 2, RATE_LIMITED, *[NO_PROGRESS] * 3).kind is STUCK


def test_rate_limit_then_success_continues() -> None:
    assert run(RATE_LIMITED, PROGRESS).kind is CONTINUE


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (529, "API Error: 529 Overloaded. This is a server-side issue, …"),
        (500, "API Error: 500 Internal server error. This is a server-side issue, …"),
        (None, "API Error: Server is temporarily limiting requests (not your usage limit) · x"),
        (None, "API Error: Unable to connect to API (ConnectionRefused)"),
    ],
)
def test_transient_api_errors_wait(status: int | None, text: str) -> None:
    record = rec(is_error=True, exit_code=1, api_error_status=status, result_text=text)
    assert run(record).kind is WAIT


def test_api_backoff_is_capped_at_900_seconds() -> None:
    verdict = run(*[RATE_LIMITED] * 12)
    now = facts(renumber([RATE_LIMITED] * 12)).now
    assert verdict.wait_until is not None and verdict.wait_until - now == 900.0


def test_backoff_past_the_deadline_is_capped() -> None:
    verdict = run(RATE_LIMITED, limits={"deadline": T0 + 80})
    assert verdict.kind is CAPPED and "would pass the deadline" in verdict.reason


def _usage_limit(
    resets_at: float | None,
    text: str = "You've hit your session limit · resets Mar 17, 2030, 5:46pm (UTC)",
) -> object:
    return rec(
        is_error=True,
        exit_code=1,
        tool_calls=0,
        result_text=text,
        rate_limit={"status": "rejected", "resets_at": resets_at, "limit_type": "five_hour"},
    )


def test_usage_limit_waits_until_reset_plus_margin() -> None:
    verdict = run(_usage_limit(T0 + 2 * HOUR))
    assert verdict.kind is WAIT
    assert verdict.wait_until == T0 + 2 * HOUR + 120
    assert verdict.reason == (
        "usage limit (five_hour): waiting until 2030-03-17T19:48:40Z "
        "(reset 2030-03-17T19:46:40Z + 120s margin)"
    )
    assert verdict.kind.status is RunStatus.WAITING


def test_usage_limit_margin_setting() -> None:
    verdict = run(_usage_limit(T0 + HOUR), limits={"limit_margin_s": 5.0})
    assert verdict.wait_until == T0 + HOUR + 5


def test_usage_limit_reset_past_the_deadline_is_capped() -> None:
    verdict = run(_usage_limit(T0 + 30 * HOUR))
    assert verdict.kind is CAPPED
    assert verdict.reason == (
        "usage limit (five_hour): it resets at 2030-03-18T23:46:40Z, after the deadline "
        "2030-03-18T17:46:40Z"
    )


def test_usage_limit_reset_within_the_margin_of_the_deadline_is_capped() -> None:
    verdict = run(_usage_limit(T0 + 24 * HOUR - 60))
    assert verdict.kind is CAPPED and "too close to the deadline" in verdict.reason


def test_on_limit_stop_caps_with_usage_limit() -> None:
    verdict = run(_usage_limit(T0 + HOUR), limits={"on_limit": "stop"})
    assert verdict.kind is CAPPED and verdict.reason.startswith("usage limit (five_hour) reached")
    assert "--on-limit is stop" in verdict.reason


def test_usage_limit_with_unknown_or_past_reset_backs_off() -> None:
    unknown = run(_usage_limit(None, "You've hit your session limit"))
    assert unknown.kind is WAIT and "reset time unknown" in unknown.reason
    past = run(_usage_limit(T0 - HOUR))
    assert past.kind is WAIT and "reset time already past" in past.reason


def test_usage_limit_from_the_wording_alone() -> None:
    record = rec(
        is_error=True,
        exit_code=1,
        result_text="You've hit your weekly limit · resets Mar 18, 2030, 5:46am (UTC)",
    )
    verdict = run(record)
    assert verdict.kind is WAIT
    assert verdict.wait_until == T0 - 40 + 12 * HOUR + 120
    assert verdict.reason.startswith("usage limit (seven_day): waiting until")


def test_context_overflow_continues_with_a_fresh_session() -> None:
    record = rec(is_error=True, exit_code=1, result_text="Prompt is too long")
    verdict = run(record)
    assert verdict.kind is CONTINUE
    assert verdict.reason.endswith("the next worker starts a fresh session")
    context = rec(terminal_reason="prompt_too_long", is_error=True, exit_code=1)
    assert run(context).kind is CONTINUE


# --- escalation (issue 6 §4) -------------------------------------------------------------------


def test_escalation_after_n_then_the_count_starts_again() -> None:
    lim = {"escalate_after": 2}
    assert not run(NO_PROGRESS, limits=lim).escalate
    verdict = run(NO_PROGRESS, NO_PROGRESS, limits=lim)
    assert verdict.escalate and "escalating the model after 2 iterations" in verdict.reason
    # escalated after iteration 2: iterations 3..6 are the stronger model's first four
    history = [NO_PROGRESS] * 6
    after = run(*history, escalated_at=2, limits=lim)
    assert after.kind is CONTINUE and not after.escalate
    assert run(*history, NO_PROGRESS, escalated_at=2, limits=lim).kind is STUCK


def test_escalation_resets_every_gutter_count() -> None:
    assert run(*[CRASH] * 5, escalated_at=4).kind is WAIT
    assert run(*[DENIED] * 5, escalated_at=1).kind is CONTINUE


def test_no_escalation_without_a_setting() -> None:
    assert not any(run(*[NO_PROGRESS] * k).escalate for k in range(1, 5))


def test_limits_from_settings() -> None:
    settings = Settings(
        max_iterations=7,
        gutter_iterations=4,
        escalate_after=2,
        max_cost_usd=3.5,
        on_limit="stop",
        max_quota_pct=80,
    )
    lim = Limits.from_settings(settings, T0)
    assert (lim.deadline, lim.max_iterations, lim.gutter_iterations) == (T0, 7, 4)
    assert (lim.max_cost_usd, lim.on_limit, lim.max_quota_pct) == (3.5, "stop", 80)
    assert lim.escalate_after is None  # nothing to escalate to
    with_model = Limits.from_settings(settings.model_copy(update={"escalate_model": "opus"}), T0)
    assert with_model.escalate_after == 2
    default = Limits.from_settings(Settings(), T0)
    assert (default.crash_backoff_s, default.api_backoff_s, default.limit_margin_s) == (5, 30, 120)
    assert default.max_launches_per_minute == 6 and default.gutter_iterations == 5


# --- gutter_state for state.json ---------------------------------------------------------------


def test_gutter_state_counts_and_clears() -> None:
    state = gutter_state(facts(renumber([NO_PROGRESS] * 3)), limits())
    assert (state.no_progress, state.same_failure, state.crashes, state.denials) == (3, 0, 0, 0)
    assert state.reason == "3 of 5 iterations in a row without progress"
    cleared = gutter_state(facts(renumber([NO_PROGRESS] * 3 + [PROGRESS])), limits())
    assert cleared.no_progress == 0 and cleared.reason is None


def test_gutter_state_names_the_most_specific_streak() -> None:
    crashes = gutter_state(facts(renumber([CRASH] * 2)), limits())
    assert crashes.crashes == 2 and crashes.same_failure == 2
    assert crashes.reason == "2 of 5 workers in a row died within 10 s of spawn"
    denials = gutter_state(facts(renumber([DENIED] * 3)), limits())
    assert denials.denials == 3 and denials.reason == "permission for Bash denied 3 of 5 times"


def test_backoff_helpers() -> None:
    assert [crash_backoff(k, 5) for k in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert api_backoff(1, 30, seed=0) == 30
    assert all(api_backoff(k, 30, seed=s) <= 900 for k in range(1, 80) for s in range(5))
