"""Marker lines: only ``UNATTENDED_DONE`` / ``UNATTENDED_BLOCKED: reason`` on a line of their own
in the final result text count (issue 3 §3, issue 4 "Blockers")."""

from __future__ import annotations

import pytest

from unattended.safety.markers import Marker, ends_with_question, find_marker

DONE = Marker("done", None)


@pytest.mark.parametrize(
    "text",
    [
        "UNATTENDED_DONE",
        "All tests pass.\nUNATTENDED_DONE",
        "All tests pass.\n\n   UNATTENDED_DONE   \n",
        "Fixed.\r\nUNATTENDED_DONE\r\n",
        "UNATTENDED_DONE\nThanks!",
    ],
)
def test_done_line_counts(text: str) -> None:
    assert find_marker(text) == DONE


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "I will print UNATTENDED_DONE when everything passes.",
        "Not yet: UNATTENDED_DONE comes later",
        "`UNATTENDED_DONE`",
        "> UNATTENDED_DONE",
        "**UNATTENDED_DONE**",
        "UNATTENDED_DONE.",
        "unattended_done",
        "UNATTENDED_DONE_SOON",
        "- UNATTENDED_DONE",
        "```\nUNATTENDED_DONE\n```",
        "~~~text\nUNATTENDED_DONE\n~~~",
        "````\n```\nUNATTENDED_DONE\n````",  # a shorter fence does not close a longer one
        "```\n```python\nUNATTENDED_DONE\n```",  # an info string cannot close a fence
        "```\nunclosed fence runs to the end\nUNATTENDED_DONE",
        "prose\u2028UNATTENDED_DONE",  # a Unicode line separator is not a newline here
        "prose\x85UNATTENDED_DONE",
    ],
)
def test_done_mentioned_not_counted(text: str | None) -> None:
    assert find_marker(text) is None


def test_after_a_closed_fence_a_marker_counts_again() -> None:
    text = "Output:\n```\nUNATTENDED_BLOCKED: quoted\n```\nUNATTENDED_DONE"
    assert find_marker(text) == DONE


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("UNATTENDED_BLOCKED: need the staging password", "need the staging password"),
        ("Tried.\nUNATTENDED_BLOCKED:   no network access  \n", "no network access"),
        ("UNATTENDED_BLOCKED:\tCI is down", "CI is down"),
        ("UNATTENDED_BLOCKED: first\nUNATTENDED_BLOCKED: second", "second"),
        ("UNATTENDED_BLOCKED: none of the fixtures load", "none of the fixtures load"),
    ],
)
def test_blocked_line_counts_with_reason(text: str, reason: str) -> None:
    assert find_marker(text) == Marker("blocked", reason)


@pytest.mark.parametrize(
    "text",
    [
        "Blocker: none",
        "Blockers: none\nNext steps: more tests",
        "UNATTENDED_BLOCKED: none",
        "UNATTENDED_BLOCKED: None.",
        "UNATTENDED_BLOCKED: N/A",
        "UNATTENDED_BLOCKED: nothing",
        "UNATTENDED_BLOCKED: -",
        "UNATTENDED_BLOCKED:",
        "UNATTENDED_BLOCKED:   ",
        "UNATTENDED_BLOCKED (none)",
        "If stuck I would write UNATTENDED_BLOCKED: reason on its own line.",
        "```\nUNATTENDED_BLOCKED: quoted from run.log\n```",
    ],
)
def test_not_a_blocker(text: str) -> None:
    assert find_marker(text) is None


def test_blocked_wins_over_done() -> None:
    text = "UNATTENDED_DONE\nUNATTENDED_BLOCKED: the deploy key expired"
    assert find_marker(text) == Marker("blocked", "the deploy key expired")
    assert find_marker("UNATTENDED_BLOCKED: key\nUNATTENDED_DONE") == Marker("blocked", "key")


def test_done_with_blocker_none_is_done() -> None:
    assert find_marker("Blocker: none\nUNATTENDED_BLOCKED: none\nUNATTENDED_DONE") == DONE


@pytest.mark.parametrize(
    "text",
    [
        "Should I also update the docs?",
        "Which option do you prefer?  \n",
        "Do you want me to continue?**",
        'Shall I "merge"?")',
        "続けますか？",
        "Done with part one.\nWhat next?",
    ],
)
def test_ends_with_question(text: str) -> None:
    assert ends_with_question(text)


@pytest.mark.parametrize(
    "text",
    [None, "", "Fixed it.", "Why did it fail? A race in setup. Fixed.", "UNATTENDED_DONE", "?!"],
)
def test_does_not_end_with_question(text: str | None) -> None:
    assert not ends_with_question(text)
