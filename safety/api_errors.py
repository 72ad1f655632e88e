"""What kind of API trouble ended a worker, so the loop can wait, fail or carry on.

Structured fields first (the ``rate_limit_event`` status and ``resetsAt``, the result's
``api_error_status`` and ``terminal_reason``, ``system/api_retry`` statuses), the CLI's wording
only as a fallback. Wording observed with CLI 2.1.197 (``../shared/claude-cli-facts.md``):

- ``You've hit your session|weekly|Opus|usage limit · resets Mar 17, 2030, 5:46pm (UTC)``
  (2.1.332 says ``5-hour limit`` for the session window)
- ``API Error: Server is temporarily limiting requests (not your usage limit) · ...``
- ``API Error: Request rejected (429) · ...``, ``API Error: 500 ...``, ``API Error: 529 Overloaded``
- ``Invalid API key · Fix external API key``, ``Not logged in · Please run /login``
- ``API Error: Unable to connect to API (ConnectionRefused)``
- ``Prompt is too long``

and in real captures of other projects (``tests/data/real``, ``claude-cli-facts.md``):

- ``You're out of extra usage · resets Apr 24, 4am (Asia/Tokyo)`` (a usage limit)
- ``API Error: Connection closed mid-response…`` (transient: the network)
- ``Claude AI usage limit reached|<epoch>`` (the older form of a usage limit)
- ``API Error: 500 {"type":"error","error":{"type":"api_error",…`` and ``API Error: 529 {…
  "overloaded_error"…`` (2.1.4: the status followed by the body)

Kinds: ``rate_limit``, ``overloaded``, ``server_error`` and ``network`` are transient (back off),
``usage_limit`` waits for its reset, ``auth`` is fatal, ``context_overflow`` means "start a fresh
session", ``other`` is an ordinary failed iteration. ``network`` is an addition to the kinds
named in the design: a laptop that lost its connection at night should wait, not fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal

from unattended.contracts.iteration import IterationRecord

TroubleKind = Literal[
    "rate_limit",
    "overloaded",
    "server_error",
    "network",
    "usage_limit",
    "auth",
    "context_overflow",
    "other",
]
TRANSIENT_KINDS: frozenset[str] = frozenset({"rate_limit", "overloaded", "server_error", "network"})
# Kinds that are about the service, not the work: they neither count towards the gutter nor
# break a streak of it.
WAITING_KINDS: frozenset[str] = TRANSIENT_KINDS | {"usage_limit"}


@dataclass(frozen=True)
class ApiTrouble:
    kind: TroubleKind
    resets_at: float | None  # epoch seconds, usage limits only
    limit_type: str | None  # five_hour, seven_day, seven_day_opus, overage, ...
    detail: str  # one line for run.log

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS


# --- wording ---------------------------------------------------------------------------------

_USAGE_LIMIT = re.compile(r"You(?:'|’)ve hit your (?:(?P<which>[\w-]+(?: [\w-]+)?) )?limit", re.I)
_OUT_OF_USAGE = re.compile(r"You(?:'|’)re out of (?P<which>extra )?usage", re.I)
_LIMIT_WORD_TYPES = {
    "session": "five_hour",
    "5-hour": "five_hour",  # 2.1.332: "You've hit your 5-hour limit · resets 3:16am (UTC)"
    "weekly": "seven_day",
    "opus": "seven_day_opus",
    "sonnet": "seven_day_sonnet",
    "usage": "overage",
}
_OLD_USAGE_LIMIT = re.compile(r"usage limit reached\|(?P<epoch>\d{9,11})", re.I)
_SERVER_LIMITING = re.compile(r"temporarily limiting requests", re.I)
_API_STATUS = re.compile(r"API Error:\s*(?:Request rejected \()?(?P<status>[1-5]\d\d)\b", re.I)
_OVERLOADED = re.compile(r"\boverloaded", re.I)
_AUTH = re.compile(
    r"Invalid API key|Not logged in|Please run /login|OAuth token (?:has )?(?:expired|revoked)"
    r"|authentication_error|invalid x-api-key|Invalid bearer token",
    re.I,
)
_CONTEXT = re.compile(
    r"Prompt is too long|prompt_too_long|context (?:length|window) (?:exceeded|limit)"
    r"|exceeds? the (?:model'?s? )?context|input length and `max_tokens` exceed",
    re.I,
)
_NETWORK = re.compile(
    # Error codes as words: "ModuleNotFoundError" must not read as ENOTFOUND.
    r"Unable to connect to API|Connection ?Refused|\b(?:ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND"
    r"|EAI_AGAIN)\b|socket hang up|network error|fetch failed|Request timed out"
    r"|Connection (?:closed|reset|lost|error)",
    re.I,
)
_CONTEXT_TERMINAL = re.compile(r"context|prompt_too_long|too_long|token_limit", re.I)

# "resets Mar 17, 2030, 5:46pm (UTC)", "resets 4am (America/Los_Angeles)", "reset at 9pm".
_RESET = re.compile(
    r"\bresets?(?:\s+at)?\s+"
    r"(?:(?P<mon>[A-Z][a-z]{2,8})\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+"
    r"(?:(?P<year>\d{4}),?\s+)?(?:at\s+)?)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?"
    r"(?:\s*\((?P<tz>[^)]+)\))?",
    re.I,
)
_MONTHS = {
    name: index
    for index, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}


def _zone(name: str | None) -> tzinfo | None:
    """The time zone named in parens; UTC when none is given; None when it is unknown."""
    if name is None:
        return UTC
    name = name.strip()
    if name.upper() in ("UTC", "GMT", "Z"):
        return UTC
    offset = re.fullmatch(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", name, re.I)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0))
        return timezone(sign * delta) if delta < timedelta(hours=24) else None
    from zoneinfo import ZoneInfo  # lazy: only usage-limit texts name a zone

    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None


def parse_reset_time(text: str, reference: float) -> float | None:
    """Epoch seconds of the reset named in the CLI's text, read as UTC unless a zone is given.

    A time without a date ("resets 4am") is the next such time after ``reference`` (when the
    worker ended); a date without a year is the next such date. None when nothing parses.
    """
    match = _RESET.search(text)
    if match is None:
        return None
    zone = _zone(match.group("tz"))
    if zone is None:
        return None
    hour, minute = int(match.group("hour")), int(match.group("minute") or 0)
    ampm = (match.group("ampm") or "").lower().replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    ref = datetime.fromtimestamp(reference, UTC).astimezone(zone)
    try:
        if match.group("mon"):
            month = _MONTHS.get(match.group("mon").lower())
            if month is None:
                return None
            day = int(match.group("day"))
            year = int(match.group("year") or ref.year)
            moment = datetime(year, month, day, hour, minute, tzinfo=zone)
            if match.group("year") is None and moment.timestamp() < reference - 86400:
                moment = moment.replace(year=year + 1)
        else:
            moment = ref.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if moment.timestamp() <= reference:
                moment = (moment + timedelta(days=1)).replace(hour=hour, minute=minute)
    except ValueError:
        return None
    return moment.timestamp()


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def classify_text(text: str, reference: float) -> ApiTrouble | None:
    """API trouble named by the CLI's wording alone (the fallback), or None."""
    detail = _first_line(text)
    usage = _USAGE_LIMIT.search(text)
    if usage:
        which = (usage.group("which") or "").lower()
        limit_type = (
            _LIMIT_WORD_TYPES.get(which.split()[0], which.replace(" ", "_")) if which else None
        )
        return ApiTrouble("usage_limit", parse_reset_time(text, reference), limit_type, detail)
    out = _OUT_OF_USAGE.search(text)
    if out:
        limit_type = "overage" if out.group("which") else None
        return ApiTrouble("usage_limit", parse_reset_time(text, reference), limit_type, detail)
    old = _OLD_USAGE_LIMIT.search(text)
    if old:
        return ApiTrouble("usage_limit", float(old.group("epoch")), None, detail)
    if _SERVER_LIMITING.search(text):
        return ApiTrouble("rate_limit", None, None, detail)
    if _AUTH.search(text):
        return ApiTrouble("auth", None, None, detail)
    if _CONTEXT.search(text):
        return ApiTrouble("context_overflow", None, None, detail)
    status = _API_STATUS.search(text)
    if status:
        return _from_status(int(status.group("status")), text, detail, reference)
    if _OVERLOADED.search(text):
        return ApiTrouble("overloaded", None, None, detail)
    if _NETWORK.search(text):
        return ApiTrouble("network", None, None, detail)
    return None


# --- structured fields -----------------------------------------------------------------------

# A ``system/api_retry`` event naming one of these will fail again however long the CLI waits
# (it retries a 401 ten times, about three minutes, by default): end the worker at once.
NON_HEALING_RETRY_ERRORS = frozenset(
    {"authentication_failed", "permission_denied", "permission_error", "invalid_request"}
)
NON_HEALING_RETRY_STATUSES = frozenset({400, 401, 403})


def retry_cannot_heal(status: int | None, error: str | None) -> bool:
    """Is the error an api_retry event names one that waiting cannot heal?"""
    return status in NON_HEALING_RETRY_STATUSES or (error or "") in NON_HEALING_RETRY_ERRORS


def _from_status(status: int, text: str, detail: str, reference: float) -> ApiTrouble:
    """Kind from an HTTP status, refined by the wording where one status means two things."""
    if status in (401, 403):
        return ApiTrouble("auth", None, None, detail)
    if status == 429:
        by_text = classify_text(text, reference) if "hit your" in text else None
        if by_text is not None and by_text.kind == "usage_limit":
            return by_text
        return ApiTrouble("rate_limit", None, None, detail)
    if status == 529:
        return ApiTrouble("overloaded", None, None, detail)
    if status == 413 or (status == 400 and _CONTEXT.search(text)):
        return ApiTrouble("context_overflow", None, None, detail)
    if 500 <= status <= 599:
        return ApiTrouble("server_error", None, None, detail)
    return ApiTrouble("other", None, None, detail)


def _clean_success(record: IterationRecord) -> bool:
    """The worker delivered a non-error result and exited 0: whatever it met, it got through."""
    return record.saw_result and not record.is_error and record.exit_code in (0, None)


def classify_api_trouble(record: IterationRecord) -> ApiTrouble | None:
    """The API trouble that ended this worker, or None when it did not end on API trouble."""
    reference = record.ended_at.timestamp()
    text = record.result_text or ""
    if record.ended_by == "api_error" and record.last_api_retry_status is not None:
        status = record.last_api_retry_status
        detail = (
            f"API error {status} ({record.last_api_retry_error or 'error'}); the CLI was "
            "retrying what retries cannot fix, so the worker was ended at once"
        )
        return _from_status(status, record.last_api_retry_error or "", detail, reference)
    if record.terminal_reason and _CONTEXT_TERMINAL.search(record.terminal_reason):
        return ApiTrouble(
            "context_overflow", None, None, f"context limit ({record.terminal_reason})"
        )
    if _clean_success(record):
        return None
    limit = record.rate_limit
    if limit is not None and (limit.status or "").lower() == "rejected":
        by_text = classify_text(text, reference) if text else None
        resets_at = limit.resets_at
        if resets_at is None and by_text is not None:
            resets_at = by_text.resets_at
        detail = _first_line(text) if text else f"{limit.limit_type or 'usage'} limit reached"
        return ApiTrouble("usage_limit", resets_at, limit.limit_type, detail)
    if record.is_error and record.api_error_status is not None:
        detail = _first_line(text) or f"API error {record.api_error_status}"
        return _from_status(record.api_error_status, text, detail, reference)
    for candidate in (
        text if record.is_error or not record.saw_result else "",
        record.last_stderr_line or "",
    ):
        if candidate:
            found = classify_text(candidate, reference)
            if found is not None:
                return found
    if not record.saw_result and record.last_api_retry_status is not None:
        status = record.last_api_retry_status
        return _from_status(
            status, "", f"API error {status} (worker ended while retrying)", reference
        )
    return None
