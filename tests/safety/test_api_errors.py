"""API trouble: structured fields first, the CLI's wording as a fallback (issue 4 "API trouble").

Every wording variant below is copied from /work/shared/claude-cli-facts.md (CLI 2.1.197); where
that file elides the tail of a message ("resets …", "<message>") the tail is filled in the same
format as the complete example next to it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.safety.records import T0, rec
from unattended.safety.api_errors import (
    TRANSIENT_KINDS,
    WAITING_KINDS,
    classify_api_trouble,
    classify_text,
    parse_reset_time,
)

# 2030-03-17T17:46:00Z, the reset in the facts file's example.
RESET_EXAMPLE = datetime(2030, 3, 17, 17, 46, tzinfo=UTC).timestamp()
REF = T0 - 3600  # the worker ended an hour before that reset

SESSION = "You've hit your session limit · resets Mar 17, 2030, 5:46pm (UTC)"
WEEKLY = "You've hit your weekly limit · resets Mar 17, 2030, 5:46pm (UTC)"
OPUS = "You've hit your Opus limit · resets Mar 17, 2030, 5:46pm (UTC)"
USAGE = "You've hit your usage limit · resets Mar 17, 2030, 5:46pm (UTC)"
SERVER_LIMITING = (
    "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited"
)
REJECTED_429 = "API Error: Request rejected (429) · Number of requests has exceeded your rate limit"
ERROR_500 = (
    "API Error: 500 Internal server error. This is a server-side issue, usually temporary — try "
    "again in a moment. If it persists, check your inference gateway (127.0.0.1:PORT)."
)
ERROR_529 = (
    "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a "
    "moment. If it persists, check your inference gateway (127.0.0.1:PORT)."
)
INVALID_KEY = "Invalid API key · Fix external API key"
NOT_LOGGED_IN = "Not logged in · Please run /login"
UNREACHABLE = "API Error: Unable to connect to API (ConnectionRefused)"
PROMPT_TOO_LONG = "Prompt is too long"
OLD_USAGE_LIMIT = "Claude AI usage limit reached|1900000000"


@pytest.mark.parametrize(
    ("text", "limit_type"),
    [(SESSION, "five_hour"), (WEEKLY, "seven_day"), (OPUS, "seven_day_opus"), (USAGE, "overage")],
)
def test_usage_limit_wordings(text: str, limit_type: str) -> None:
    trouble = classify_text(text, REF)
    assert trouble is not None
    assert trouble.kind == "usage_limit"
    assert trouble.limit_type == limit_type
    assert trouble.resets_at == RESET_EXAMPLE
    assert trouble.detail == text
    assert not trouble.transient


def test_usage_limit_with_typographic_apostrophe_and_no_reset() -> None:
    trouble = classify_text("You’ve hit your limit", REF)
    assert trouble is not None and trouble.kind == "usage_limit"
    assert trouble.resets_at is None and trouble.limit_type is None


def test_old_usage_limit_string_still_understood() -> None:
    trouble = classify_text(OLD_USAGE_LIMIT, REF)
    assert trouble is not None
    assert (trouble.kind, trouble.resets_at) == ("usage_limit", 1_900_000_000.0)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (SERVER_LIMITING, "rate_limit"),
        (REJECTED_429, "rate_limit"),
        (ERROR_500, "server_error"),
        ("API Error: 503 Service Unavailable", "server_error"),
        ("API Error: 502 Bad Gateway", "server_error"),
        (ERROR_529, "overloaded"),
        ("Overloaded", "overloaded"),
        (INVALID_KEY, "auth"),
        (NOT_LOGGED_IN, "auth"),
        ("API Error: 401 authentication_error", "auth"),
        ("OAuth token has expired", "auth"),
        (UNREACHABLE, "network"),
        ("API Error: Request timed out.", "network"),
        (PROMPT_TOO_LONG, "context_overflow"),
        ("API Error: 400 prompt is too long: 210000 tokens > 200000 maximum", "context_overflow"),
        ("API Error: 413 Request too large", "context_overflow"),
        ("API Error: 404 model not found", "other"),
    ],
)
def test_wording_fallback(text: str, kind: str) -> None:
    trouble = classify_text(text, REF)
    assert trouble is not None
    assert trouble.kind == kind
    assert trouble.transient == (kind in TRANSIENT_KINDS)


def test_server_limiting_is_not_a_usage_limit() -> None:
    """The CLI's own words: "(not your usage limit)"; it must not be read as one."""
    trouble = classify_text(SERVER_LIMITING, REF)
    assert trouble is not None and trouble.kind == "rate_limit" and trouble.resets_at is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "All done.",
        "I fixed the rate limiter tests.",
        "The presets 5 file loads fine",
        "ModuleNotFoundError: No module named 'app'",  # not ENOTFOUND
    ],
)
def test_ordinary_text_is_no_trouble(text: str) -> None:
    assert classify_text(text, REF) is None


def test_kind_sets() -> None:
    assert {"rate_limit", "overloaded", "server_error", "network"} == TRANSIENT_KINDS
    assert TRANSIENT_KINDS | {"usage_limit"} == WAITING_KINDS
    assert "auth" not in WAITING_KINDS and "context_overflow" not in WAITING_KINDS


# --- reset times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resets Mar 17, 2030, 5:46pm (UTC)", datetime(2030, 3, 17, 17, 46, tzinfo=UTC)),
        ("resets March 17 2030 at 5pm", datetime(2030, 3, 17, 17, 0, tzinfo=UTC)),
        ("resets Mar 18, 4am (UTC)", datetime(2030, 3, 18, 4, 0, tzinfo=UTC)),
        ("resets 5:46pm (UTC)", datetime(2030, 3, 17, 17, 46, tzinfo=UTC)),
        ("resets 4pm (UTC)", datetime(2030, 3, 18, 16, 0, tzinfo=UTC)),  # 4pm today has passed
        ("reset at 21:30", datetime(2030, 3, 17, 21, 30, tzinfo=UTC)),
        ("resets 12am (UTC)", datetime(2030, 3, 18, 0, 0, tzinfo=UTC)),
        ("resets 12pm (GMT+2)", datetime(2030, 3, 18, 10, 0, tzinfo=UTC)),
        ("resets 10am (America/Los_Angeles)", datetime(2030, 3, 17, 17, 0, tzinfo=UTC)),  # PDT
        ("resets 9am (America/Los_Angeles)", datetime(2030, 3, 18, 16, 0, tzinfo=UTC)),
    ],
)
def test_parse_reset_time(text: str, expected: datetime) -> None:
    assert parse_reset_time(text, REF) == expected.timestamp()


def test_reset_date_without_year_long_past_means_next_year() -> None:
    assert (
        parse_reset_time("resets Jan 2, 3am (UTC)", REF)
        == datetime(2031, 1, 2, 3, tzinfo=UTC).timestamp()
    )


@pytest.mark.parametrize(
    "text",
    [
        "resets soon",
        "resets 13pm (UTC)",
        "resets 25:00",
        "resets Foo 3, 4am",
        "resets Feb 30, 2030, 4am",
        "resets 4am (Not/AZone)",
        "no reset here",
    ],
)
def test_unparseable_reset_is_none(text: str) -> None:
    assert parse_reset_time(text, REF) is None


# --- records: structured fields first ---------------------------------------------------------


def _error_record(text: str | None, **fields: object) -> object:
    values: dict[str, object] = dict(is_error=True, exit_code=1, result_text=text, tool_calls=0)
    values.update(fields)
    return rec(**values)


def test_rate_limit_event_rejected_gives_usage_limit_with_its_reset() -> None:
    record = _error_record(
        SESSION,
        rate_limit={"status": "rejected", "resets_at": T0 + 7200, "limit_type": "five_hour"},
    )
    trouble = classify_api_trouble(record)
    assert trouble is not None
    assert (trouble.kind, trouble.resets_at, trouble.limit_type) == (
        "usage_limit",
        T0 + 7200,  # the structured resetsAt wins over the text's
        "five_hour",
    )


def test_rate_limit_event_without_reset_falls_back_to_the_text() -> None:
    record = _error_record(WEEKLY, rate_limit={"status": "rejected", "limit_type": "seven_day"})
    trouble = classify_api_trouble(record)
    assert trouble is not None and trouble.resets_at == RESET_EXAMPLE


def test_rate_limit_event_rejected_without_text() -> None:
    record = _error_record(None, rate_limit={"status": "rejected", "limit_type": "seven_day_opus"})
    trouble = classify_api_trouble(record)
    assert trouble is not None
    assert trouble.kind == "usage_limit" and "seven_day_opus" in trouble.detail


def test_allowed_warning_event_is_not_trouble() -> None:
    record = rec(rate_limit={"status": "allowed_warning", "utilization": 0.9})
    assert classify_api_trouble(record) is None


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        (429, REJECTED_429, "rate_limit"),
        (429, SERVER_LIMITING, "rate_limit"),
        (429, SESSION, "usage_limit"),
        (500, ERROR_500, "server_error"),
        (503, None, "server_error"),
        (529, ERROR_529, "overloaded"),
        (401, INVALID_KEY, "auth"),
        (403, None, "auth"),
        (400, PROMPT_TOO_LONG, "context_overflow"),
        (413, None, "context_overflow"),
        (400, "API Error: 400 bad request", "other"),
    ],
)
def test_api_error_status_first(status: int, text: str | None, kind: str) -> None:
    trouble = classify_api_trouble(_error_record(text, api_error_status=status))
    assert trouble is not None and trouble.kind == kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (SESSION, "usage_limit"),
        (WEEKLY, "usage_limit"),
        (OPUS, "usage_limit"),
        (USAGE, "usage_limit"),
        (SERVER_LIMITING, "rate_limit"),
        (REJECTED_429, "rate_limit"),
        (ERROR_500, "server_error"),
        (ERROR_529, "overloaded"),
        (INVALID_KEY, "auth"),
        (NOT_LOGGED_IN, "auth"),
        (UNREACHABLE, "network"),
        (PROMPT_TOO_LONG, "context_overflow"),
    ],
)
def test_error_result_text_fallback(text: str, kind: str) -> None:
    trouble = classify_api_trouble(_error_record(text))
    assert trouble is not None and trouble.kind == kind


def test_stderr_line_fallback_when_no_result() -> None:
    record = rec(saw_result=False, result_subtype=None, exit_code=1, last_stderr_line=INVALID_KEY)
    trouble = classify_api_trouble(record)
    assert trouble is not None and trouble.kind == "auth"


def test_worker_killed_while_retrying_uses_the_last_api_retry_status() -> None:
    record = rec(saw_result=False, result_subtype=None, exit_code=-9, last_api_retry_status=529)
    trouble = classify_api_trouble(record)
    assert trouble is not None and trouble.kind == "overloaded"


def test_context_limit_termination_reason() -> None:
    record = rec(terminal_reason="prompt_too_long", is_error=True, exit_code=1)
    trouble = classify_api_trouble(record)
    assert trouble is not None and trouble.kind == "context_overflow"


@pytest.mark.parametrize("text", [SESSION, INVALID_KEY, ERROR_529, PROMPT_TOO_LONG])
def test_clean_success_quoting_an_error_is_no_trouble(text: str) -> None:
    """A worker that *talks about* an API error in a successful result did not meet one."""
    assert classify_api_trouble(rec(result_text=f"The log said:\n{text}")) is None


def test_recovered_retries_are_no_trouble() -> None:
    """The CLI retried a 529 and then succeeded (exit 0, clean result)."""
    assert classify_api_trouble(rec(api_retries=3, last_api_retry_status=529)) is None


# --- wordings seen in real captures (tests/data/real, claude-cli-facts.md "Newer CLI versions")
# and with CLI 2.1.332 (/work/notes/cli-facts-332.md §4) --------------------------------------

OUT_OF_EXTRA_USAGE = "You're out of extra usage · resets Apr 24, 4am (Asia/Tokyo)"
CONNECTION_CLOSED = "API Error: Connection closed mid-response. The response was incomplete."
REAL_500 = (
    'API Error: 500 {"type":"error","error":{"type":"api_error","message":"Internal server '
    'error"},"request_id":"req_011CX7HaqAMfRL4GKbdQarW7"}'
)
REAL_529 = (
    'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},'
    '"request_id":"req_011CX7J5ZXp3npD8nY7VYZvm"}'
)
FORBIDDEN_403 = "Failed to authenticate. API Error: 403 Request not allowed"
BAD_REQUEST_400 = "API Error: 400 messages: text content blocks must be non-empty"


def test_out_of_extra_usage_is_a_usage_limit_with_its_reset() -> None:
    ref = datetime(2026, 4, 23, 12, 0, tzinfo=UTC).timestamp()
    trouble = classify_text(OUT_OF_EXTRA_USAGE, ref)
    assert trouble is not None and trouble.kind == "usage_limit"
    assert trouble.limit_type == "overage"
    # 4am in Tokyo (UTC+9) on Apr 24 is 19:00 UTC on Apr 23.
    assert trouble.resets_at == datetime(2026, 4, 23, 19, 0, tzinfo=UTC).timestamp()
    record = rec(is_error=True, exit_code=1, result_text=OUT_OF_EXTRA_USAGE)
    assert (found := classify_api_trouble(record)) is not None and found.kind == "usage_limit"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (CONNECTION_CLOSED, "network"),
        (REAL_500, "server_error"),
        (REAL_529, "overloaded"),
        (NOT_LOGGED_IN, "auth"),
        (INVALID_KEY, "auth"),
        (FORBIDDEN_403, "auth"),
        (BAD_REQUEST_400, "other"),
        (OLD_USAGE_LIMIT, "usage_limit"),
        (PROMPT_TOO_LONG, "context_overflow"),
    ],
)
def test_real_wordings_in_an_error_result(text: str, kind: str) -> None:
    """Each wording in a real error result (2.1.4 gives no api_error_status: wording decides)."""
    record = rec(is_error=True, exit_code=1, result_text=text, api_error_status=None)
    trouble = classify_api_trouble(record)
    assert trouble is not None and trouble.kind == kind
    assert (kind in TRANSIENT_KINDS) == (kind in ("network", "server_error", "overloaded"))


@pytest.mark.parametrize(
    ("status", "error", "heals"),
    [
        (401, "authentication_failed", False),
        (403, "authentication_failed", False),
        (400, "invalid_request", False),
        (None, "authentication_failed", False),
        (429, "rate_limit", True),
        (529, "overloaded", True),
        (500, "server_error", True),
        (None, "unknown", True),
    ],
)
def test_retry_events_that_cannot_heal(status: int | None, error: str, heals: bool) -> None:
    from unattended.safety.api_errors import retry_cannot_heal

    assert retry_cannot_heal(status, error) is not heals


def test_a_worker_ended_on_a_fatal_retry_is_classified_like_the_final_error() -> None:
    """The CLI would have printed "Invalid API key" after ~3 minutes of retries."""
    record = rec(
        saw_result=True,
        is_error=True,
        result_subtype="error_during_execution",
        result_text=None,
        exit_code=1,
        ended_by="api_error",
        api_retries=1,
        last_api_retry_status=401,
        last_api_retry_error="authentication_failed",
    )
    trouble = classify_api_trouble(record)
    assert trouble is not None and trouble.kind == "auth"
    from unattended.safety.classify import fatal_reason

    assert (fatal_reason(record) or "").startswith("authentication failed: API error 401")


def test_the_2_1_332_wording_of_the_session_limit() -> None:
    trouble = classify_text("You've hit your 5-hour limit · resets 3:16am (UTC)", REF)
    assert trouble is not None and (trouble.kind, trouble.limit_type) == (
        "usage_limit",
        "five_hour",
    )
    assert trouble.resets_at is not None
