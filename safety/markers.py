"""The worker's two report lines: ``UNATTENDED_DONE`` and ``UNATTENDED_BLOCKED: <reason>``.

Only a line of its own in the final ``result`` text counts. Prose that mentions a marker
mid-line ("I will print UNATTENDED_DONE when..."), "Blocker: none", a marker inside inline code,
a quote (``> UNATTENDED_DONE``) or a fenced code block does not: a worker that *talks about* the
protocol must not end the run.

When both markers appear, blocked wins: a run that ends ``blocked`` costs a person a look in
the morning, a run wrongly ended ``done`` hides unfinished work. Among several blocked lines the
last one (the worker's final word) gives the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from unattended.contracts.names import DONE_MARKER, MARKER_PREFIX

_BLOCKED_LINE = re.compile(r"UNATTENDED_BLOCKED:[ \t]*(?P<reason>.*?)\s*")
_FENCE = re.compile(r"(`{3,}|~{3,})")
_NEWLINE = re.compile(r"\r\n|\r|\n")
# A reason that says there is no blocker is a filled-in template, not a blocker.
_NO_BLOCKER = frozenset({"none", "n/a", "na", "nothing", "no", "-", "--", "null", "nil", "(none)"})
# Trailing decoration a question may carry: closing quotes, brackets, emphasis.
_TRAILING_DECORATION = " \t\r\n*_`'\")]}»”’"


@dataclass(frozen=True)
class Marker:
    kind: Literal["done", "blocked"]
    reason: str | None


def _unfenced_lines(text: str) -> list[str]:
    """The stripped lines outside fenced code blocks (``` or ~~~, CommonMark-style: closed by a
    line of at least as many of the same character and nothing else; an unclosed fence runs to
    the end). Lines are split on newlines only: a Unicode separator inside prose (U+2028, NEL)
    does not make a marker after it a line of its own."""
    lines: list[str] = []
    fence: str | None = None
    for raw in _NEWLINE.split(text):
        line = raw.strip()
        if fence is None:
            opener = _FENCE.match(line)
            if opener:
                fence = opener.group(1)
                continue
            lines.append(line)
        elif line.startswith(fence) and line == fence[0] * len(line):
            fence = None
    return lines


def _blocked_reason(line: str) -> str | None:
    """The reason of a blocked line, or None when the line is not a (real) blocked marker."""
    match = _BLOCKED_LINE.fullmatch(line)
    if match is None:
        return None
    reason = match.group("reason").strip()
    if not reason or reason.lower().rstrip(".!") in _NO_BLOCKER:
        return None
    return reason


def find_marker(result_text: str | None) -> Marker | None:
    """The marker the worker reported in its final result text, if any (see module doc)."""
    if not result_text or (MARKER_PREFIX not in result_text):
        return None
    done = False
    blocked: str | None = None
    for line in _unfenced_lines(result_text):
        if line == DONE_MARKER:
            done = True
            continue
        reason = _blocked_reason(line)
        if reason is not None:
            blocked = reason
    if blocked is not None:
        return Marker("blocked", blocked)
    if done:
        return Marker("done", None)
    return None


def find_marker_in(texts: list[str], last_text: str | None = None) -> Marker | None:
    """The marker of a worker that printed several result events: one in any of them counts
    (a background task's follow-up result must not hide the answer's ``UNATTENDED_DONE``);
    blocked still wins, and the last blocked reason is given."""
    found = [m for m in (find_marker(t) for t in (*texts, last_text)) if m is not None]
    blocked = [m for m in found if m.kind == "blocked"]
    if blocked:
        return blocked[-1]
    return found[0] if found else None


def ends_with_question(result_text: str | None) -> bool:
    """True when the final text ends by asking something (nobody is there to answer)."""
    if not result_text:
        return False
    tail = result_text.rstrip(_TRAILING_DECORATION)
    return tail.endswith(("?", "？"))
