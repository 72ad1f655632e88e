"""Real captured outputs of the Claude Code CLI (tests/data/real) read through the stream reader
and the transcript pricing: tokens, cost, outcome and context window as the CLI reported them,
and killed-worker pricing equal to ccusage's figures for the same transcript files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.real_corpus import (
    ccusage,
    main_transcripts,
    stream_expected,
    stream_files,
    transcript_dirs,
)
from unattended.supervisor.worker.accounting import iteration_usage
from unattended.supervisor.worker.stream import StreamReader
from unattended.supervisor.worker.transcript import transcript_usage

EXPECTED = stream_expected()
CCUSAGE = ccusage()


def test_the_corpus_is_as_large_as_promised() -> None:
    assert len(stream_files()) >= 20
    assert len(transcript_dirs()) >= 5
    assert set(CCUSAGE) == {d.name for d in transcript_dirs()}
    sources = (stream_files()[0].parent.parent / "SOURCES.md").read_text()
    for path in stream_files():
        assert f"streams/{path.name}" in sources


def _replay(path: Path, seed: int) -> StreamReader:
    """Feed the file in random chunks, as a pipe would deliver it."""
    data = path.read_bytes()
    rng = random.Random(seed)
    reader = StreamReader(clock=lambda: 0.0)
    start = 0
    while start < len(data):
        size = rng.choice((1, 7, 64, 500, 4096, 65536))
        reader.feed(data[start : start + size])
        start += size
    reader.finish()
    return reader


@pytest.mark.parametrize("path", stream_files(), ids=lambda p: p.stem)
def test_stream_replay_reads_what_the_cli_reported(path: Path) -> None:
    expected = EXPECTED[path.name]
    facts = _replay(path, seed=len(path.name)).facts
    assert facts.lines_invalid == 0
    assert facts.tally.results == expected["result_count"]
    assert facts.cli_version == expected["claude_code_version"]
    assert facts.model == expected["init_model"]
    last = expected["results"][-1]
    assert facts.result is not None and facts.result.is_error == last["is_error"]
    usage = iteration_usage(facts.tally)
    # The CLI's own figure, as it printed it.
    assert usage.cost_usd_cli == pytest.approx(last["total_cost_usd"], rel=1e-9)
    sums = usage.totals()
    model_usage = last["modelUsage"]
    if model_usage:
        # Tokens of every model, not just the main one that result.usage covers.
        for key, ours in (
            ("inputTokens", sums.input),
            ("outputTokens", sums.output),
            ("cacheCreationInputTokens", sums.cache_write),
            ("cacheReadInputTokens", sums.cache_read),
        ):
            assert ours == sum(m[key] for m in model_usage.values())
        assert set(usage.by_model) == {m for m, v in model_usage.items() if any(v.values())}
        assert facts.tally.context_window() == model_usage[expected["init_model"]]["contextWindow"]
        # On these 2.1.x captures (no 1-hour writes) the published price is the CLI's price.
        assert usage.cost_usd_priced == pytest.approx(last["total_cost_usd"], rel=0.01)
    else:  # a trimmed capture: the main model's usage is all there is
        assert sums.input == last["usage"]["input_tokens"]
        assert facts.tally.context_window() is None
    assert usage.cost_usd == pytest.approx(
        max(usage.cost_usd_cli or 0, usage.cost_usd_priced), abs=1e-6
    )


def test_corpus_results_left_out_of_result_usage_are_counted() -> None:
    """The issue's figure: result.usage alone is a fraction of Σ modelUsage on real captures."""
    usage_only = every_model = 0
    for path in stream_files():
        last = EXPECTED[path.name]["results"][-1]
        if not last["modelUsage"]:
            continue
        usage_only += sum(last["usage"].values())
        every_model += iteration_usage(_replay(path, 0).facts.tally).totals().total
    assert usage_only < 0.95 * every_model


@pytest.mark.parametrize("folder", transcript_dirs(), ids=lambda p: p.name)
def test_transcript_pricing_equals_ccusage(folder: Path) -> None:
    """A killed worker is priced from its transcript (and subagents/) as ccusage prices it."""
    figures = CCUSAGE[folder.name]["totals"]
    cost = 0.0
    sums = [0, 0, 0, 0]
    for path in main_transcripts(folder):
        totals = transcript_usage(path)
        cost += totals.cost_priced
        sums = [a + b for a, b in zip(sums, totals.totals(), strict=True)]
    assert cost == pytest.approx(figures["totalCost"], rel=0.01)
    assert sums == [
        figures["inputTokens"],
        figures["outputTokens"],
        figures["cacheCreationTokens"],
        figures["cacheReadTokens"],
    ]


def test_transcript_per_model_figures_equal_ccusage() -> None:
    """The session that switched models: each model's tokens at its own price."""
    folder = next(d for d in transcript_dirs() if d.name == "spotter-258c-compact-1h")
    (path,) = main_transcripts(folder)
    totals = transcript_usage(path)
    for model, theirs in CCUSAGE[folder.name]["models"].items():
        ours = totals.by_model[model]
        assert (ours.input, ours.output, ours.cache_write, ours.cache_read) == (
            theirs["inputTokens"],
            theirs["outputTokens"],
            theirs["cacheCreationTokens"],
            theirs["cacheReadTokens"],
        )
    assert totals.compactions == 1


@pytest.mark.parametrize(
    ("name", "compactions"),
    [("claudeless-compact", 1), ("agentlogs-compact", 1), ("spotter-short", 0)],
)
def test_compactions_in_real_transcripts(name: str, compactions: int) -> None:
    (path,) = main_transcripts(next(d for d in transcript_dirs() if d.name == name))
    assert transcript_usage(path).compactions == compactions
