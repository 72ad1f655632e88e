"""The gutter's running streaks (issue 13 item 13): judging a run one iteration at a time, with
only a window of its history and the streaks saved in state.json in between (a resume at every
step), gives the verdicts of judging the whole history."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.safety.records import facts
from tests.safety.strategies import KINDS, history_of, kind_names
from unattended.contracts.state import GutterState
from unattended.safety.decide import Limits, decide
from unattended.safety.gutter import (
    Streaks,
    advance,
    after_escalation,
    from_state,
    judge,
    streaks_of,
    to_state,
)

LIMITS = Limits(deadline=4_000_000_000.0, max_iterations=10_000, gutter_iterations=5)


@given(st.lists(kind_names, min_size=1, max_size=30), st.none() | st.integers(1, 30))
def test_running_streaks_restored_at_every_step_decide_as_the_whole_history(
    names: list[str], escalated_at: int | None
) -> None:
    history = history_of([KINDS[n] for n in names])
    running = Streaks()
    for i, record in enumerate(history):
        running = advance(running, judge(record))
        saved = GutterState.model_validate_json(to_state(running, LIMITS).model_dump_json())
        running = from_state(saved)  # what a resumed daemon starts from
        whole = facts(history[: i + 1], escalated_at=escalated_at if escalated_at else None)
        if escalated_at is not None and escalated_at >= record.number:
            whole = facts(history[: i + 1])  # the loop escalates after this verdict, not before
        window = facts(history[max(0, i - 2) : i + 1], streaks=running, launched=i + 1,
                       escalated_at=whole.escalated_at)  # fmt: skip
        assert decide(window, LIMITS) == decide(whole, LIMITS)
        if escalated_at is not None and record.number == escalated_at:
            running = after_escalation(running)


@given(st.lists(kind_names, max_size=40))
def test_what_the_streaks_keep_is_bounded(names: list[str]) -> None:
    found = streaks_of(facts(history_of([KINDS[n] for n in names])))
    assert len(found.recent) <= 3
    assert len(found.denial_sets) == found.denials <= len(names)
