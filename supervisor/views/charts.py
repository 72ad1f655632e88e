"""PNG charts for the morning report, drawn with matplotlib (the optional ``report`` extra).

Uses ``matplotlib.figure.Figure`` directly (no pyplot): no global state, no GUI backend, nothing
that needs a display on a headless server.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from unattended.supervisor.records.fsio import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from unattended.contracts.telemetry import TelemetryLine

MISSING_NOTE = (
    "Charts need matplotlib: install the `report` extra (`pipx install 'unattended[report]'`, "
    "or `pip install matplotlib` in unattended's environment)."
)
SIZE = (8.0, 4.0)  # inches
DPI = 100  # 800 x 400 pixels
OUTCOME_COLOURS = {
    "done": "#2e7d32",
    "progress": "#66bb6a",
    "no-progress": "#fbc02d",
    "blocked": "#8e24aa",
    "failed": "#e53935",
    "timeout": "#fb8c00",
    "stalled": "#6d4c41",
    "api-error": "#1e88e5",
    "crashed": "#424242",
}




def write_charts(
    lines: list[TelemetryLine], max_cost_usd: float | None, out_dir: Path
) -> list[Path]:
    """Three PNGs in ``out_dir``; raises ImportError when matplotlib is missing."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    ensure_private_dir(out_dir)
    numbers = [t.iteration for t in lines]
    written: list[Path] = []

    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_subplot()
    tokens = [t.input_tokens + t.output_tokens + t.cache_creation_tokens for t in lines]
    ax.bar(numbers, tokens, color="#90caf9", label="tokens (in + out + cache write)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("tokens")
    cost_ax = ax.twinx()
    cost_ax.plot(
        numbers, [t.total_cost_usd for t in lines], color="#c62828", marker="o", label="cost (USD)"
    )
    cost_ax.set_ylabel("cost (USD)")
    ax.set_title("Tokens and cost per iteration")
    handles = ax.get_legend_handles_labels()[0] + cost_ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", fontsize="small")
    written.append(_save(fig, out_dir / "tokens_cost.png"))

    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_subplot()
    running, cumulative = 0.0, []
    for t in lines:
        running += t.total_cost_usd
        cumulative.append(running)
    start = [numbers[0] - 1] if numbers else []
    ax.plot(
        start + numbers,
        [0.0] * len(start) + cumulative,
        color="#c62828",
        marker="o",
        label="cumulative cost",
    )
    if max_cost_usd:
        ax.axhline(max_cost_usd, color="#424242", linestyle="--", label=f"cap ${max_cost_usd:g}")
        ax.set_ylim(0, max(max_cost_usd, running) * 1.1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("USD")
    ax.set_title("Cumulative cost" + (" against the cap" if max_cost_usd else " (no cap set)"))
    ax.legend(loc="upper left", fontsize="small")
    written.append(_save(fig, out_dir / "cumulative_cost.png"))

    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_subplot()
    colours = [OUTCOME_COLOURS.get(t.outcome.value, "#9e9e9e") for t in lines]
    ax.bar(numbers, [t.duration_s / 60 for t in lines], color=colours)
    ax.set_xlabel("iteration")
    ax.set_ylabel("minutes")
    ax.set_title("Iteration durations by outcome")
    seen = list(dict.fromkeys(t.outcome.value for t in lines))
    ax.legend(
        handles=[Patch(color=OUTCOME_COLOURS.get(o, "#9e9e9e"), label=o) for o in seen],
        loc="upper left",
        fontsize="small",
    )
    written.append(_save(fig, out_dir / "durations.png"))
    return written


def _save(fig, path: Path) -> Path:  # noqa: ANN001 - matplotlib Figure, imported lazily
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    atomic_write(path, png.getvalue())  # 0600, never through a symlink planted at its name
    return path
