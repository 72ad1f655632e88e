"""How the views print numbers and tables (one style for metrics, report, watch and doctor)."""

from __future__ import annotations


def fmt_tokens(count: float) -> str:
    """1,234 / 45.6k / 1.23M: compact for narrow screens."""
    if count < 10_000:
        return f"{int(count):,}"
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def text_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """A plain aligned table (no box drawing): stable in files, pipes and narrow terminals."""
    right = right or set()
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def fmt(row: list[str]) -> str:
        cells = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r) for r in rows)])
