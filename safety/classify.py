"""How one iteration ended, judged from the supervisor's facts (git, exit, result event).

Order of the rules in :func:`classify` (the first that applies wins):

1. spawn error → failed (the worker never ran);
2. ``--done-when`` passed → done (the user's own check outranks the worker);
   the daemon died while the worker ran (``ended_by`` "daemon_died", recorded on resume) →
   crashed, whatever its stream said (nobody checked git or ``--done-when`` after it);
3. a marker in a *clean* result (result event seen, ``is_error`` false, subtype success, exit 0
   or ended by the supervisor after the result) → blocked / done. A DONE marker in an error
   result is not done; when the worker printed several results, a marker in any clean one
   counts;
4. ended by the supervisor: timeout → timeout, stall → stalled, stop or the ``--hours``
   deadline → progress/no-progress;
5. API trouble (:mod:`safety.api_errors`) → api-error;
6. no result event → failed (exit code and last stderr line in the reason);
7. an error result (``error_max_turns`` …) or a non-zero exit → failed;
8. git changed (new HEAD or tree) → progress, whatever the worker said;
9. otherwise no-progress, with the most telling reason: permission denials (naming the tools),
   a final question, no tool calls at all, or simply no change.
"""

from __future__ import annotations

import re

from unattended.contracts.iteration import IterationRecord
from unattended.contracts.status import Outcome
from unattended.safety.api_errors import classify_api_trouble
from unattended.safety.markers import ends_with_question, find_marker_in
from unattended.safety.wording import short

# A worker that dies this soon after spawn, by itself, is a crash (gutter rule c).
CRASH_WINDOW_S = 10.0
DAEMON_DIED = "daemon_died"  # IterationRecord.ended_by of the iteration a daemon died in

_MISSING_BINARY = re.compile(
    r"No such file|not found|ENOENT|Errno 2\b|Permission denied|EACCES|Errno 13\b"
    r"|not executable|Exec format error|ENOEXEC|Errno 8\b",
    re.I,
)
# Spawn errors about the supervisor's own files (the iteration log), not the binary: a worker
# may have deleted .unattended/; the loop recreates it, so these are crashes, not fatal.
_OWN_FILES = re.compile(r"^cannot (?:create|open|write)\b", re.I)
_DISK_FULL = re.compile(r"No space left|ENOSPC|Errno 28\b", re.I)
_ROOT_REFUSAL = re.compile(r"cannot be used with root/sudo privileges", re.I)


def _clean_result(record: IterationRecord) -> bool:
    """A result the worker meant: no error, and the process did not fail after it."""
    if not record.saw_result or record.is_error:
        return False
    if record.result_subtype not in (None, "success"):
        return False
    return record.exit_code in (0, None) or record.ended_by is not None


def denied_tools(record: IterationRecord) -> list[str]:
    """The distinct tools the worker was refused, in first-seen order."""
    return list(dict.fromkeys(record.permission_denials))


def fatal_reason(record: IterationRecord) -> str | None:
    """Why this iteration makes every later one pointless (→ failed, exit 7), or None.

    Authentication errors, a claude binary that is missing or not executable (or a full disk)
    at spawn time, and the CLI refusing bypassPermissions as root: retrying cannot fix these.
    """
    if record.spawn_error and _DISK_FULL.search(record.spawn_error):
        return f"disk full: {short(record.spawn_error)}"
    if (
        record.spawn_error
        and not _OWN_FILES.search(record.spawn_error)
        and _MISSING_BINARY.search(record.spawn_error)
    ):
        return f"cannot run the claude binary: {short(record.spawn_error)}"
    stderr = record.last_stderr_line or ""
    # In a clean result the words are the worker's (it may be debugging this), not the CLI's.
    said = "" if _clean_result(record) else (record.result_text or "")
    if _ROOT_REFUSAL.search(stderr) or _ROOT_REFUSAL.search(said):
        return (
            "claude refuses bypassPermissions as root: use --allowed-tools, "
            "or set IS_SANDBOX=1 inside a container"
        )
    trouble = classify_api_trouble(record)
    if trouble is not None and trouble.kind == "auth":
        return (
            f"authentication failed: {trouble.detail} (fix the API key or log in, then start again)"
        )
    return None


def is_crash(record: IterationRecord, outcome: Outcome) -> bool:
    """Died by itself within CRASH_WINDOW_S of spawn (a timeout or stall is not a crash), or
    the daemon died while it ran: a daemon that keeps dying is a crash loop too."""
    if outcome is Outcome.CRASHED:
        return True
    return (
        outcome is Outcome.FAILED and record.ended_by is None and record.duration_s < CRASH_WINDOW_S
    )


def _exit_words(record: IterationRecord) -> str:
    code = record.exit_code
    if code is None:
        return "ended"
    if code < 0:
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _no_progress_reason(record: IterationRecord) -> str:
    tools = denied_tools(record)
    if tools:
        return f"permission denied for {', '.join(tools)}; no change to HEAD or the work tree"
    if ends_with_question(record.result_text):
        return "the worker ended by asking a question (nobody is there to answer); no change"
    if record.tool_calls == 0:
        return "exited 0 with no tool calls and no change"
    return "no change to HEAD or the work tree"


def _progress_reason(record: IterationRecord) -> str:
    if record.git_before.head != record.git_after.head:
        commits = f"{record.commits} new commit{'s' if record.commits != 1 else ''}"
        return commits if record.commits else "HEAD moved"
    files = record.files_changed
    return (
        f"work tree changed ({files} file{'s' if files != 1 else ''})"
        if files
        else ("work tree changed")
    )


def classify(record: IterationRecord, done_when_passed: bool | None = None) -> tuple[Outcome, str]:
    """Outcome and a one-line human reason for one iteration (rules in the module doc)."""
    if done_when_passed is None:
        done_when_passed = record.done_when_passed
    if record.spawn_error:
        return Outcome.FAILED, f"could not start the worker: {short(record.spawn_error)}"
    if done_when_passed:
        return Outcome.DONE, "the --done-when command passed"
    if record.ended_by == DAEMON_DIED:
        priced = (
            "priced from its transcript"
            if record.usage_source == "transcript"
            else ("priced from its result event" if record.saw_result else "no usage found")
        )
        return Outcome.CRASHED, f"the daemon died while this worker ran ({priced})"
    if _clean_result(record):
        marker = find_marker_in(record.marker_texts, record.result_text)
        if marker is not None and marker.kind == "blocked":
            return Outcome.BLOCKED, f"the worker is blocked: {short(marker.reason)}"
        if marker is not None:
            return Outcome.DONE, "the worker reported UNATTENDED_DONE"
    if record.ended_by == "timeout":
        return Outcome.TIMEOUT, f"worker timed out after {record.duration_s:.0f}s"
    if record.ended_by == "stall":
        return Outcome.STALLED, f"worker stalled (no output, no CPU) after {record.duration_s:.0f}s"
    if record.ended_by in ("stop", "deadline"):
        why = "ended on a stop request" if record.ended_by == "stop" else "ended at the deadline"
        if record.made_progress:
            return Outcome.PROGRESS, f"{why}; {_progress_reason(record)}"
        return Outcome.NO_PROGRESS, f"{why}; no change"
    trouble = classify_api_trouble(record)
    if trouble is not None:
        return Outcome.API_ERROR, f"API {trouble.kind.replace('_', ' ')}: {short(trouble.detail)}"
    if not record.saw_result:
        reason = f"worker {_exit_words(record)} without a result event"
        if record.last_stderr_line:
            reason += f"; stderr: {short(record.last_stderr_line)}"
        return Outcome.FAILED, reason
    if record.is_error or record.result_subtype not in (None, "success"):
        what = record.result_subtype if record.result_subtype not in (None, "success") else "error"
        detail = f": {short(record.result_text)}" if record.result_text else ""
        return Outcome.FAILED, f"worker ended with {what}{detail}"
    if record.exit_code not in (0, None):
        return Outcome.FAILED, f"worker {_exit_words(record)} after its result"
    if record.made_progress:
        reason = _progress_reason(record)
        if ends_with_question(record.result_text):
            reason += " (it ended with a question)"
        return Outcome.PROGRESS, reason
    return Outcome.NO_PROGRESS, _no_progress_reason(record)


# --- failure fingerprints (gutter rule b) ----------------------------------------------------

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_PATH = re.compile(r"(?:[A-Za-z]:)?[\w.~-]*(?:[/\\][^\s/\\:'\"`,;()\[\]{}<>]+)+[/\\]?")
# A hex id: a token of hex digits holding a digit (a short sha, an address), or eight and more
# hex letters. Decimal numbers are hex tokens too, so every number-like token becomes "<n>" and
# "took 999999 ms" and "took 1000000 ms" read the same.
_HEX = re.compile(r"\b(?:0x)?(?:[0-9a-f]*\d[0-9a-f]*|[a-f]{8,})\b", re.I)
# Opaque ids of the API and the CLI: "req_011CA1b2Xy…", "msg_01…", "toolu_01…", and any long
# token that mixes letters with two or more separate runs of digits (random base62).
_TOKEN_ID = re.compile(
    r"\b(?:(?:req|msg|toolu|srvtoolu|file|batch|msgbatch|org|user|session|sess|run)_\w+"
    r"|(?=\w{8,}\b)(?=\w*[A-Za-z])\w*?\d+[A-Za-z_]+\d\w*)\b"
)
_GROUPED = re.compile(r"\d+(?:[.,_]\d+)+")  # 1,234 / 3.14 / 1.2.3: one number, not several
_NUMBER = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def normalise_error(text: str) -> str:
    """An error line with the parts that vary between repeats removed: ids, paths, numbers.

    Lower-cased and cut to 200 characters, so two repeats of one failure compare equal.
    """
    text = _UUID.sub("<id>", text)
    text = _PATH.sub("<path>", text)
    text = _GROUPED.sub("<n>", text)
    text = _HEX.sub("<n>", text)
    text = _TOKEN_ID.sub("<id>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text).strip().lower()[:200]


def last_error(record: IterationRecord) -> str | None:
    """The worker's last error as a person would quote it, or None when nothing failed."""
    if record.spawn_error:
        return record.spawn_error
    if record.is_error and record.result_text:
        return record.result_text.strip().splitlines()[-1] if record.result_text.strip() else None
    if record.is_error or record.result_subtype not in (None, "success"):
        return f"result {record.result_subtype or 'error'}"
    if record.ended_by in ("timeout", "stall"):
        return f"worker ended by {record.ended_by}"
    if not record.saw_result or record.exit_code not in (0, None):
        if record.last_stderr_line:
            return record.last_stderr_line
        return f"worker {_exit_words(record)}" + ("" if record.saw_result else " without a result")
    return None


def failure_fingerprint(record: IterationRecord) -> str | None:
    """The normalised last error, equal for repeats of one failure; None when none failed."""
    error = last_error(record)
    return normalise_error(error) if error else None
