"""The session policy: when the next worker resumes the previous session."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from unattended.contracts.iteration import GitPoint, IterationRecord
from unattended.safety.session import session_to_resume

T = datetime(2026, 11, 30, tzinfo=UTC)


def record(progress: bool = True, peak: int = 10_000, **extra) -> IterationRecord:
    after = GitPoint(head="b" if progress else "a", tree="t")
    values = dict(
        number=1, started_at=T, ended_at=T, duration_s=1.0, saw_result=True, session_id="s1",
        context_peak_tokens=peak, git_before=GitPoint(head="a", tree="t"), git_after=after,
    )  # fmt: skip
    values.update(extra)
    return IterationRecord(**values)


def ask(last, policy="auto", model_changed=False):  # noqa: ANN001, ANN201
    return session_to_resume(
        last, policy, model_changed=model_changed, window=100_000, warn_pct=70, stop_pct=85
    )


def test_auto_resumes_clean_progress_in_the_normal_band() -> None:
    assert ask(record()) == "s1"


@pytest.mark.parametrize(
    "last",
    [
        record(progress=False),
        record(peak=70_000),  # warn band
        record(peak=90_000),  # stop band
        record(handed_off=True),
        record(is_error=True),
        record(saw_result=False),
        record(session_id=None),
        None,
    ],
)
def test_auto_starts_fresh(last) -> None:  # noqa: ANN001
    assert ask(last) is None


def test_model_change_and_fresh_policy_start_fresh() -> None:
    assert ask(record(), model_changed=True) is None
    assert ask(record(), policy="fresh") is None


def test_continue_resumes_without_progress_but_not_after_an_error() -> None:
    assert ask(record(progress=False, peak=90_000), policy="continue") == "s1"
    assert ask(record(is_error=True), policy="continue") is None


def test_a_session_the_cli_compacted_is_not_resumed() -> None:
    assert ask(record(compactions=1)) is None


def test_the_bands_of_a_200k_window_act_before_the_clis_compaction() -> None:
    """The CLI compacts a 200k window at 167k: stop is lowered from 85 % to 78.5 %, and a warn
    setting of 80 % to 73.5 %. 150k (75 %) is then past the warn band: start fresh."""
    last = record(peak=150_000)
    assert (
        session_to_resume(
            last, "auto", model_changed=False, window=200_000, warn_pct=80, stop_pct=85
        )
        is None
    )
    assert (
        session_to_resume(
            record(peak=100_000),
            "auto",
            model_changed=False,
            window=200_000,
            warn_pct=80,
            stop_pct=85,
        )
        == "s1"
    )
