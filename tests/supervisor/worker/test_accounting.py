"""Per-iteration accounting from result events, in the shapes CLI 2.1.197 and 2.1.332 print
them (figures measured against the loopback fake API: /work/notes/cli-facts-332.md §2, §3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from unattended.contracts.iteration import IterationRecord
from unattended.supervisor.worker.accounting import settle
from unattended.supervisor.worker.stream import StreamReader

SONNET = "claude-sonnet-4-6"
SESSION = "9d3c0a51-0c2e-4b7a-8f7e-6c1d2e3f4a5b"
# What the fake API answered every call with, and what both versions then priced it at.
PER_CALL = {"input": 1000, "output": 500, "cache_read": 2000, "cache_write": 300}
PER_CALL_COST = 0.012225


def _mu(n: int, cost: float, **extra: Any) -> dict[str, Any]:
    return {
        "inputTokens": PER_CALL["input"] * n,
        "outputTokens": PER_CALL["output"] * n,
        "cacheReadInputTokens": PER_CALL["cache_read"] * n,
        "cacheCreationInputTokens": PER_CALL["cache_write"] * n,
        "costUSD": cost,
        "contextWindow": 200000,
        "maxOutputTokens": 32000,
        **extra,
    }


def _result(n_session: int, since: bool, text: str = "ok", index: int | None = None) -> dict:
    """One invocation's result after ``n_session`` identical invocations of the session."""
    event: dict[str, Any] = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": text,
        "session_id": SESSION,
        "total_cost_usd": round(PER_CALL_COST * n_session, 6),
        "usage": {
            "input_tokens": 1000,
            "output_tokens": 500,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 300},
        },
        "modelUsage": {SONNET: _mu(n_session, round(PER_CALL_COST * n_session, 6))},
    }
    if since:
        event["result_index"] = index or 0
        event["model_usage_since_last_result"] = {SONNET: _mu(1, PER_CALL_COST)}
    return event


def _init(version: str, model: str = SONNET) -> dict:
    return {
        "type": "system",
        "subtype": "init",
        "session_id": SESSION,
        "model": model,
        "claude_code_version": version,
    }


def _record(number: int, events: list[dict], resumed: bool) -> IterationRecord:
    from unattended.supervisor.run.iteration import record_from_worker

    reader = StreamReader(clock=lambda: 0.0)
    reader.feed(b"".join(json.dumps(e).encode() + b"\n" for e in events))
    reader.finish()

    class Outcome:
        exit_code, ended_by, last_stderr_line, stream = 0, None, None, reader.facts

    from unattended.contracts.iteration import GitPoint

    now = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    rec = record_from_worker(number, now, now + 1, Outcome, GitPoint(), GitPoint())
    rec.resumed_session = resumed
    return rec


def _run(version: str, since: bool, cumulative: bool) -> list[IterationRecord]:
    """Three iterations of one session, each like the CLI printed it; settled in order."""
    history: list[IterationRecord] = []
    for k in range(3):
        n = k + 1 if cumulative else 1
        rec = _record(k + 1, [_init(version), _result(n, since)], resumed=k > 0)
        settle(rec, history[-1] if history else None)
        history.append(rec)
    return history


@pytest.mark.parametrize(
    ("version", "since", "cumulative"),
    [
        ("2.1.197", False, False),  # per-invocation figures
        ("2.1.332", True, True),  # cumulative modelUsage, per-invocation since_last_result
        ("2.1.250", False, True),  # cumulative without the since field: the session delta
    ],
)
def test_three_resumed_iterations_cost_what_the_session_cost(
    version: str, since: bool, cumulative: bool
) -> None:
    history = _run(version, since, cumulative)
    assert [r.cost_usd_cli for r in history] == [PER_CALL_COST] * 3
    assert sum(r.cost_usd for r in history) == pytest.approx(3 * PER_CALL_COST)
    for rec in history:
        assert (rec.input_tokens, rec.output_tokens) == (1000, 500)
        assert (rec.cache_creation_tokens, rec.cache_read_tokens) == (300, 2000)
        assert rec.cost_usd_priced == pytest.approx(PER_CALL_COST)
        assert rec.cli_version == version


def test_a_fresh_session_after_a_resumed_one_has_no_baseline() -> None:
    first = _record(1, [_init("2.1.250"), _result(1, False)], resumed=False)
    settle(first, None)
    other = _record(2, [_init("2.1.250"), _result(1, False)], resumed=False)
    settle(other, first)
    assert other.cost_usd_cli == PER_CALL_COST


def test_several_results_in_one_process_all_count() -> None:
    """2.1.197 (§3): result #2's usage is its own turn, modelUsage/cost cumulative."""

    def res(text: str, inp: int, out: int, cum_in: int, cum_out: int, cost: float) -> dict:
        return {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "result": text,
            "session_id": SESSION,
            "total_cost_usd": cost,
            "usage": {"input_tokens": inp, "output_tokens": out},
            "modelUsage": {
                SONNET: {"inputTokens": cum_in, "outputTokens": cum_out, "costUSD": cost}
            },
        }

    rec = _record(
        1,
        [
            _init("2.1.197"),
            res("answer1\nUNATTENDED_DONE", 300, 30, 300, 30, 0.00135),
            _init("2.1.197"),  # a second init event comes before the follow-up turn
            res("Stale notification — already processed", 400, 40, 700, 70, 0.00315),
        ],
        resumed=False,
    )
    settle(rec, None)
    assert rec.results == 2
    assert (rec.input_tokens, rec.output_tokens) == (700, 70)
    assert rec.cost_usd_cli == 0.00315
    from unattended.safety.classify import classify

    outcome, reason = classify(rec)
    assert outcome.value == "done", reason  # the marker of the first result is not lost


def test_several_results_in_2_1_332_sum_the_per_result_figures() -> None:
    first = _result(1, True, "answer1")
    second = _result(2, True, "answer2", index=1)
    rec = _record(1, [_init("2.1.332"), first, second], resumed=False)
    settle(rec, None)
    assert rec.cost_usd_cli == pytest.approx(2 * PER_CALL_COST)
    assert rec.input_tokens == 2000


def test_other_models_tokens_count_and_each_is_priced_at_its_price() -> None:
    event = _result(1, False)
    event["modelUsage"]["claude-haiku-4-5-20251001"] = {
        "inputTokens": 10_000,
        "outputTokens": 1_000,
        "costUSD": 0.015,
    }
    event["total_cost_usd"] = PER_CALL_COST + 0.015
    rec = _record(1, [_init("2.1.197"), event], resumed=False)
    assert rec.input_tokens == 11_000
    assert set(rec.tokens_by_model) == {SONNET, "claude-haiku-4-5-20251001"}
    assert rec.cost_usd_priced == pytest.approx(PER_CALL_COST + 0.015)


def test_the_larger_price_is_what_counts() -> None:
    # The CLI priced 1-hour cache writes at the 5-minute rate: the published price is higher.
    event = _result(1, False)
    event["usage"]["cache_creation"] = {"ephemeral_1h_input_tokens": 300}
    rec = _record(1, [_init("2.1.197"), event], resumed=False)
    assert rec.cost_usd_cli == PER_CALL_COST
    assert rec.cost_usd_priced == pytest.approx(PER_CALL_COST + 300 * 3.0 * 0.75 / 1e6)
    assert rec.cost_usd == rec.cost_usd_priced
    # The CLI priced Sonnet 4.6 at Opus rates: its own figure is the higher one.
    event = _result(1, False)
    event["total_cost_usd"] = event["modelUsage"][SONNET]["costUSD"] = 0.020375
    rec = _record(1, [_init("2.1.197"), event], resumed=False)
    assert rec.cost_usd == 0.020375 > rec.cost_usd_priced


def test_context_window_is_the_main_models() -> None:
    event = _result(1, False)
    event["modelUsage"]["claude-opus-4-6[1m]"] = {"inputTokens": 1, "contextWindow": 1_000_000}
    rec = _record(1, [_init("2.1.197"), event], resumed=False)
    assert rec.context_window == 200_000


def test_per_invocation_figures_that_grow_are_not_taken_for_cumulative_ones() -> None:
    """2.1.197 reports per invocation: a bigger second invocation is counted whole."""
    first = _record(1, [_init("2.1.197"), _result(1, False)], resumed=False)
    settle(first, None)
    bigger = _result(2, False)  # twice the first one's figures, as its own
    bigger["usage"] = {k: 2 * v for k, v in bigger["usage"].items() if isinstance(v, int)}
    second = _record(2, [_init("2.1.197"), bigger], resumed=True)
    settle(second, first)
    assert second.cost_usd_cli == pytest.approx(2 * PER_CALL_COST)
    # Without the result's own usage to tell, a later version's figures are not cut either.
    unknown = _record(2, [_init("2.1.250", model="other-model"), _result(2, False)], resumed=True)
    settle(unknown, first)
    assert unknown.cost_usd_cli == pytest.approx(2 * PER_CALL_COST)
