"""One iteration's outcome, judged from the supervisor's facts (safety/classify.py)."""

from __future__ import annotations

import pytest

from tests.safety.records import rec
from unattended.contracts.status import Outcome
from unattended.safety.classify import (
    classify,
    denied_tools,
    failure_fingerprint,
    fatal_reason,
    is_crash,
    last_error,
    normalise_error,
)

ROOT_REFUSAL = (
    "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
)


def outcome(**fields: object) -> Outcome:
    return classify(rec(**fields))[0]


# --- done / blocked ----------------------------------------------------------------------------


def test_done_marker_in_clean_result() -> None:
    assert classify(rec(result_text="All green.\nUNATTENDED_DONE")) == (
        Outcome.DONE,
        "the worker reported UNATTENDED_DONE",
    )


def test_done_when_passing_outranks_everything_but_spawn_errors() -> None:
    assert classify(rec(exit_code=1, is_error=True), done_when_passed=True)[0] is Outcome.DONE
    assert rec(done_when_passed=True) and outcome(done_when_passed=True) is Outcome.DONE
    assert outcome(done_when_passed=True, spawn_error="claude: no such file") is Outcome.FAILED


def test_done_when_failing_does_not_hide_a_done_marker() -> None:
    """Issue 3: done is the marker line *or* --done-when exiting 0."""
    assert classify(rec(result_text="UNATTENDED_DONE"), done_when_passed=False)[0] is Outcome.DONE


def test_blocked_marker_with_reason() -> None:
    verdict = classify(rec(result_text="UNATTENDED_BLOCKED: need the VPN"))
    assert verdict == (Outcome.BLOCKED, "the worker is blocked: need the VPN")


@pytest.mark.parametrize(
    "fields",
    [
        dict(is_error=True, exit_code=1),
        dict(result_subtype="error_max_turns", exit_code=1),
        dict(exit_code=1),
        dict(saw_result=False, result_subtype=None),
    ],
)
def test_marker_in_an_error_result_does_not_count(fields: dict[str, object]) -> None:
    assert outcome(result_text="UNATTENDED_DONE", **fields) is not Outcome.DONE


def test_marker_counts_when_the_supervisor_ended_the_worker_after_its_result() -> None:
    record = rec(result_text="UNATTENDED_DONE", exit_code=-2, ended_by="stop")
    assert classify(record)[0] is Outcome.DONE


@pytest.mark.parametrize(
    "text",
    [
        "Blocker: none",
        "Status: all good.\nBlockers: none\nRemaining: nothing",
        "UNATTENDED_BLOCKED: none",
        "Per the protocol I would print UNATTENDED_BLOCKED: <reason> if blocked.",
    ],
)
def test_blocker_none_never_blocks(text: str) -> None:
    assert outcome(result_text=text) is Outcome.NO_PROGRESS
    assert outcome(result_text=text, progress=True) is Outcome.PROGRESS


# --- ended by the supervisor -------------------------------------------------------------------


def test_timeout_and_stall_are_not_failures_or_crashes() -> None:
    for ended_by, expected in (("timeout", Outcome.TIMEOUT), ("stall", Outcome.STALLED)):
        record = rec(ended_by=ended_by, exit_code=-9, saw_result=False, duration=3)
        result, reason = classify(record)
        assert result is expected
        assert "3s" in reason
        assert not is_crash(record, result)


def test_stop_request_is_progress_or_no_progress() -> None:
    assert outcome(ended_by="stop", exit_code=1, is_error=True) is Outcome.NO_PROGRESS
    assert (
        outcome(ended_by="stop", exit_code=1, is_error=True, progress=True, commits=2)
        is Outcome.PROGRESS
    )


# --- failures ----------------------------------------------------------------------------------


def test_no_result_event_is_a_failure_with_exit_code_and_stderr() -> None:
    result, reason = classify(
        rec(saw_result=False, result_subtype=None, exit_code=3, last_stderr_line="Segfault")
    )
    assert result is Outcome.FAILED
    assert reason == "worker exited with code 3 without a result event; stderr: Segfault"


def test_exit_zero_without_result_is_a_failure() -> None:
    assert outcome(saw_result=False, result_subtype=None, exit_code=0) is Outcome.FAILED


def test_killed_by_signal_wording() -> None:
    reason = classify(rec(saw_result=False, exit_code=-9))[1]
    assert "was killed by signal 9" in reason


def test_error_subtype_is_a_failure_even_with_progress() -> None:
    result, reason = classify(rec(result_subtype="error_max_turns", exit_code=1, progress=True))
    assert result is Outcome.FAILED and "error_max_turns" in reason


def test_non_zero_exit_after_a_clean_result_is_a_failure() -> None:
    result, reason = classify(rec(exit_code=2))
    assert result is Outcome.FAILED and reason == "worker exited with code 2 after its result"


def test_spawn_error_is_a_failure() -> None:
    result, reason = classify(rec(spawn_error="claude: no such file", saw_result=False))
    assert result is Outcome.FAILED and reason.startswith("could not start the worker")


# --- API trouble -------------------------------------------------------------------------------


def test_api_error_outcome() -> None:
    record = rec(
        is_error=True,
        exit_code=1,
        api_error_status=529,
        result_text="API Error: 529 Overloaded. This is a server-side issue, …",
    )
    result, reason = classify(record)
    assert result is Outcome.API_ERROR and reason.startswith("API overloaded: API Error: 529")


def test_prompt_too_long_is_an_api_error_not_a_failure() -> None:
    record = rec(is_error=True, exit_code=1, result_text="Prompt is too long")
    assert classify(record)[0] is Outcome.API_ERROR


# --- progress is what git shows ----------------------------------------------------------------


def test_progress_reasons() -> None:
    assert classify(rec(progress=True, commits=2)) == (Outcome.PROGRESS, "2 new commits")
    assert classify(rec(progress=True, commits=1))[1] == "1 new commit"
    assert classify(rec(progress=True, commits=0))[1] == "HEAD moved"
    tree_only = rec(git_after=rec().git_before.model_copy(update={"tree": "f" * 40}))
    tree_only = tree_only.model_copy(update={"files_changed": 3})
    assert classify(tree_only) == (Outcome.PROGRESS, "work tree changed (3 files)")


@pytest.mark.parametrize(
    "text",
    [
        "I fixed every failing test and committed the work.",
        "Great progress! All done.",
        "",
        None,
    ],
)
def test_exit_zero_without_tool_calls_or_change_is_no_progress_whatever_it_says(
    text: str | None,
) -> None:
    result, reason = classify(rec(tool_calls=0, result_text=text))
    assert result is Outcome.NO_PROGRESS
    assert reason == "exited 0 with no tool calls and no change"


def test_claims_never_replace_git_evidence() -> None:
    assert outcome(result_text="Committed 5 fixes.", tool_calls=12) is Outcome.NO_PROGRESS


def test_final_question_without_marker_is_no_progress() -> None:
    result, reason = classify(rec(result_text="I found two approaches. Which do you prefer?"))
    assert result is Outcome.NO_PROGRESS
    assert "asking a question" in reason


def test_final_question_is_never_success() -> None:
    """With commits it is progress (git says so) but never done, and the reason notes it."""
    result, reason = classify(rec(result_text="Fixed two. Shall I go on?", progress=True))
    assert result is Outcome.PROGRESS and "question" in reason


def test_permission_denials_name_the_tools() -> None:
    record = rec(permission_denials=["Bash", "Write", "Bash"])
    result, reason = classify(record)
    assert result is Outcome.NO_PROGRESS
    assert reason.startswith("permission denied for Bash, Write")
    assert denied_tools(record) == ["Bash", "Write"]


# --- fatal conditions (exit 7) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "start"),
    [
        (dict(spawn_error="claude: no such file (is the claude binary installed?)"), "cannot run"),
        (dict(spawn_error="/usr/bin/claude: not executable"), "cannot run"),
        (dict(spawn_error="claude: Exec format error"), "cannot run"),
        (dict(spawn_error="cannot create /p/0001.stderr: No space left on device"), "disk full"),
        (dict(saw_result=False, exit_code=1, last_stderr_line=ROOT_REFUSAL), "claude refuses"),
        (dict(is_error=True, exit_code=1, result_text="Invalid API key · Fix external API key"),
         "authentication failed"),
        (dict(is_error=True, exit_code=1, result_text="Not logged in · Please run /login"),
         "authentication failed"),
        (dict(is_error=True, exit_code=1, api_error_status=401), "authentication failed"),
    ],
)  # fmt: skip
def test_fatal_reasons(fields: dict[str, object], start: str) -> None:
    reason = fatal_reason(rec(**fields))
    assert reason is not None and reason.startswith(start)


@pytest.mark.parametrize(
    "fields",
    [
        dict(),
        dict(spawn_error="cannot create /p/.unattended/iterations/0003.stderr: No such file"),
        dict(spawn_error="claude: Resource temporarily unavailable"),
        dict(is_error=True, exit_code=1, api_error_status=529),
        dict(result_text="The docs say: Invalid API key · Fix external API key"),
        dict(result_text=f"Fixed the CI job that failed with: {ROOT_REFUSAL}", progress=True),
    ],
)
def test_not_fatal(fields: dict[str, object]) -> None:
    assert fatal_reason(rec(**fields)) is None


# --- crashes -----------------------------------------------------------------------------------


def test_crash_is_a_quick_death_by_itself() -> None:
    quick = rec(saw_result=False, exit_code=1, duration=2)
    assert is_crash(quick, classify(quick)[0])
    slow = rec(saw_result=False, exit_code=1, duration=10)
    assert not is_crash(slow, classify(slow)[0])
    spawn = rec(spawn_error="fork failed", saw_result=False, duration=0)
    assert is_crash(spawn, classify(spawn)[0])
    fine = rec(duration=1)
    assert not is_crash(fine, classify(fine)[0])


# --- failure fingerprints ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Error at line 12 of /tmp/a/b.py", "Error at line 977 of /home/u/c.py"),
        ("test_x failed after 1.5s (pid 4242)", "test_x failed after 30.25s (pid 7)"),
        ("object 0x7f3a2b1c not found", "object 0xdeadbeef00 not found"),
        ("commit abc1234 rejected", "commit 9f8e7d6 rejected"),
        ("run 123e4567-e89b-12d3-a456-426614174000 gone", "run 00000000-0000-0000-0000-00000000"
         "0001 gone"),
        ("took 999999 ms", "took 1000000 ms"),
        ("E   AssertionError: 3 != 4", "E   AssertionError: 10 != 11"),
        ("C:\\work\\x.py:3: bad", "D:\\y\\z.py:40: bad"),
        ("Timeout   waiting", "timeout waiting"),
        ("messages.3.content.0: ids must be unique (request req_011CA1b2Xy)",
         "messages.17.content.0: ids must be unique (request req_011CQ9zzT4)"),
        ("message msg_01XFDUDYJgAACzvnptvVoYEL failed", "message msg_019Zk2Lm3 failed"),
        ("tool toolu_01A09q90qw90lq917835lq9 denied", "tool toolu_01Bx7 denied"),
    ],
)  # fmt: skip
def test_fingerprint_strips_numbers_paths_and_ids(one: str, other: str) -> None:
    assert normalise_error(one) == normalise_error(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("ImportError: no module named foo", "SyntaxError: invalid syntax"),
        ("connection refused", "permission denied"),
    ],
)
def test_different_errors_keep_different_fingerprints(one: str, other: str) -> None:
    assert normalise_error(one) != normalise_error(other)


def test_last_error_sources() -> None:
    assert last_error(rec()) is None
    assert last_error(rec(spawn_error="boom")) == "boom"
    assert last_error(rec(is_error=True, exit_code=1, result_text="a\nAPI Error: 500 x")) == (
        "API Error: 500 x"
    )
    assert last_error(rec(result_subtype="error_max_turns", exit_code=1)) == (
        "result error_max_turns"
    )
    assert last_error(rec(ended_by="timeout", saw_result=False)) == "worker ended by timeout"
    assert last_error(rec(saw_result=False, exit_code=1, last_stderr_line="oops")) == "oops"
    assert last_error(rec(saw_result=False, exit_code=1)) == (
        "worker exited with code 1 without a result"
    )


def test_fingerprint_none_without_failure() -> None:
    assert failure_fingerprint(rec()) is None
    assert failure_fingerprint(rec(progress=True)) is None
    a = failure_fingerprint(rec(saw_result=False, exit_code=1, last_stderr_line="at /a/b.py:3"))
    b = failure_fingerprint(rec(saw_result=False, exit_code=1, last_stderr_line="at /c.py:44"))
    assert a is not None and a == b
