"""Hypothesis strategies and the iteration kinds the property tests combine into histories."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st

from tests.safety.records import rec, renumber
from unattended.contracts.iteration import IterationRecord
from unattended.safety.verdict import VerdictKind

settings.register_profile("safety", deadline=None, max_examples=150)
settings.load_profile("safety")

GOING_ON = (VerdictKind.CONTINUE, VerdictKind.WAIT)
N = 5  # gutter_iterations by default

# --- text -----------------------------------------------------------------------------------

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


# --- failure texts -------------------------------------------------------------------------

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
