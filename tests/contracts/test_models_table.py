"""Context windows and prices by model: the table, its precedence, and the CLI's own figure."""

from __future__ import annotations

import pytest

from unattended.contracts.models_table import (
    DEFAULT_WINDOW,
    LARGE_WINDOW,
    MOST_EXPENSIVE,
    context_window_for,
    parse_model,
    price_for,
    price_usage,
    request_is_long,
    table_window,
)


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("claude-opus-4-8[1m]", LARGE_WINDOW),
        ("claude-sonnet-4-5[1m]", LARGE_WINDOW),  # the suffix means 1M whatever the family
        # Measured (CLI 2.1.197 and 2.1.332): contextWindow 200000 unless the [1m] variant...
        ("claude-opus-4-8", DEFAULT_WINDOW),
        ("claude-opus-4-6", DEFAULT_WINDOW),
        ("claude-sonnet-4-6", DEFAULT_WINDOW),
        ("claude-opus-4-6[1m]", LARGE_WINDOW),
        ("claude-sonnet-4-6[1m]", LARGE_WINDOW),
        ("claude-sonnet-5", DEFAULT_WINDOW),
        # ...and 1000000 for 2.1.332's default and aliases, which carry no suffix.
        ("claude-opus-5-5", LARGE_WINDOW),
        ("claude-sonnet-5-5", LARGE_WINDOW),
        ("claude-fable-5-1", LARGE_WINDOW),
        ("claude-opus-4-5-20251101", DEFAULT_WINDOW),
        ("claude-sonnet-4-5-20250929", DEFAULT_WINDOW),
        ("claude-haiku-4-5-20251001", DEFAULT_WINDOW),
        ("claude-3-5-sonnet-20241022", DEFAULT_WINDOW),
        ("claude-opus-4-20250514", DEFAULT_WINDOW),
        ("opus", DEFAULT_WINDOW),
        ("some-other-model", DEFAULT_WINDOW),
        (None, DEFAULT_WINDOW),
    ],
)
def test_table_window(model: str | None, window: int) -> None:
    assert table_window(model) == window


def test_window_precedence_override_then_reported_then_table() -> None:
    assert context_window_for("claude-opus-4-8[1m]", 400_000, 123_456) == 123_456
    assert context_window_for("claude-opus-4-8[1m]", 400_000, None) == 400_000
    assert context_window_for("claude-opus-4-8[1m]", None, None) == 1_000_000
    assert context_window_for("claude-haiku-4-5", None, None) == 200_000
    assert context_window_for("claude-haiku-4-5", 0, 0) == 200_000  # zero is "not known"


@pytest.mark.parametrize(
    ("model", "family", "version"),
    [
        ("claude-opus-4-8[1m]", "opus", (4, 8)),
        ("claude-opus-4-20250514", "opus", (4, 0)),  # a date is not a minor version
        ("claude-3-opus-20240229", "opus", (3, 0)),
        ("claude-3-5-haiku-20241022", "haiku", (3, 5)),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "sonnet", (4, 5)),
        ("sonnet", "sonnet", None),
        ("gpt-5", None, None),
    ],
)
def test_parse_model(model: str, family: str | None, version: tuple[int, int] | None) -> None:
    assert parse_model(model) == (family, version)


def test_price_matches_the_cli_figure() -> None:
    """The CLI reported $7.54625 for 1M in + 100k out + 7k cache write + 5k cache read."""
    assert price_usage("claude-opus-4-8[1m]", 1_000_000, 100_000, 7_000, 5_000) == 7.54625


@pytest.mark.parametrize(
    ("model", "inp", "out"),
    [
        ("claude-opus-4-8", 5.0, 25.0),
        ("claude-opus-4-5-20251101", 5.0, 25.0),
        ("claude-opus-4-1-20250805", 15.0, 75.0),
        ("claude-opus-4-20250514", 15.0, 75.0),
        ("claude-sonnet-4-5", 3.0, 15.0),
        ("claude-sonnet-5", 2.0, 10.0),
        ("claude-haiku-4-5-20251001", 1.0, 5.0),
        ("claude-3-5-haiku-20241022", 0.8, 4.0),
        ("claude-3-haiku-20240307", 0.25, 1.25),
    ],
)
def test_family_prices(model: str, inp: float, out: float) -> None:
    p = price_for(model)
    assert (p.input, p.output) == (inp, out)
    assert p.cache_write == pytest.approx(inp * 1.25)
    assert p.cache_hit == pytest.approx(inp * 0.1)
    assert price_usage(model, 1_000_000, 0, 0, 0) == pytest.approx(inp)
    assert price_usage(model, 0, 1_000_000, 0, 0) == pytest.approx(out)
    assert price_usage(model, 0, 0, 1_000_000, 0) == pytest.approx(inp * 1.25)
    assert price_usage(model, 0, 0, 0, 1_000_000) == pytest.approx(inp * 0.1)


@pytest.mark.parametrize("model", [None, "", "gpt-5", "<synthetic>", "mystery-model"])
def test_unknown_model_is_priced_as_the_most_expensive(model: str | None) -> None:
    assert price_for(model) == MOST_EXPENSIVE
    most = max(price_for(m).output for m in ("claude-opus-4-1", "claude-fable-5", "sonnet"))
    assert MOST_EXPENSIVE.output >= most
    assert price_usage(model, 1_000, 1_000, 0, 0) == pytest.approx(0.09)


def test_negative_counts_cost_nothing() -> None:
    assert price_usage("claude-sonnet-4-5", -5, -1, -1, -1) == 0.0


def test_table_module_is_import_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, contracts.models_table; "
        "print(sorted(m for m in ('pydantic','typer','anthropic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_one_hour_cache_writes_cost_twice_the_input_price() -> None:
    # 1M cache writes on Opus 4.6 ($5/M input): 5-minute $6.25, 1-hour $10.
    assert price_usage("claude-opus-4-6", 0, 0, 1_000_000, 0) == pytest.approx(6.25)
    assert price_usage("claude-opus-4-6", 0, 0, 1_000_000, 0, 1_000_000) == pytest.approx(10.0)
    assert price_usage("claude-opus-4-6", 0, 0, 1_000_000, 0, 400_000) == pytest.approx(
        0.6 * 6.25 + 0.4 * 10.0
    )
    # More 1-hour writes than writes cannot be: capped at the writes.
    assert price_usage("claude-sonnet-4-5", 0, 0, 100, 0, 1_000) == pytest.approx(100 * 6.0 / 1e6)


@pytest.mark.parametrize(
    ("model", "inp", "out"),
    [
        ("claude-sonnet-4-5", 6.0, 22.5),
        ("claude-sonnet-4-6", 6.0, 22.5),
        ("claude-opus-4-6", 10.0, 37.5),
    ],
)
def test_long_context_tier(model: str, inp: float, out: float) -> None:
    assert request_is_long(150_000, 40_000, 10_001)
    assert not request_is_long(150_000, 40_000, 10_000)
    assert price_usage(model, 1_000_000, 1_000_000, 0, 0, long_context=True) == pytest.approx(
        inp + out
    )
    assert price_usage(model, 0, 0, 1_000_000, 0, 1_000_000, long_context=True) == pytest.approx(
        2 * inp
    )


def test_models_without_a_long_context_tier_keep_their_price() -> None:
    assert price_usage("claude-haiku-4-5", 1_000_000, 0, 0, 0, long_context=True) == 1.0
