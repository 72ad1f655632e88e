"""What one worker used and cost, from its ``result`` events, whatever the CLI version reports.

The figures of a ``result`` event are not all of one kind (``../shared/claude-cli-facts.md``):

- ``usage`` is the main model only, for this invocation, or for the turns since the previous
  result when one process prints several (a background task finishing after the answer);
- ``modelUsage`` (every model: Haiku side calls, subagents) and ``total_cost_usd`` are
  cumulative for the process, and with 2.1.332 on ``--resume`` for the whole session;
- 2.1.332's ``model_usage_since_last_result`` is per result, never cumulative.

So a worker's own figures are the sum of ``model_usage_since_last_result`` when every result
carries it, else the last result's ``modelUsage``/``total_cost_usd`` less what the same session
had already reported (the previous iteration's last result) when those are cumulative. Each is
priced twice: the CLI's ``costUSD`` and the published prices (``contracts.models_table``). The
caps use the larger (``IterationUsage.cost_usd``): one estimate being low must never overrun one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unattended.contracts.iteration import IterationRecord
    from unattended.contracts.stream import ModelUsage, ResultEvent, Usage


@dataclass
class ModelTokens:
    """One model's token counts (and the CLI's price for them, when it gave one)."""

    input: int = 0
    output: int = 0
    cache_write: int = 0  # every cache write; cache_write_1h of them were 1-hour writes
    cache_read: int = 0
    cache_write_1h: int = 0
    cost_cli: float = 0.0

    @classmethod
    def of_model_usage(cls, mu: ModelUsage) -> ModelTokens:
        return cls(
            mu.input_tokens,
            mu.output_tokens,
            mu.cache_creation_input_tokens,
            mu.cache_read_input_tokens,
            mu.cache_creation_1h or 0,
            mu.cost_usd,
        )

    @classmethod
    def of_usage(cls, usage: Usage) -> ModelTokens:
        one_hour = usage.cache_creation.ephemeral_1h_input_tokens if usage.cache_creation else 0
        return cls(
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_creation_input_tokens,
            usage.cache_read_input_tokens,
            one_hour,
        )

    def add(self, other: ModelTokens) -> None:
        self.input += other.input
        self.output += other.output
        self.cache_write += other.cache_write
        self.cache_read += other.cache_read
        self.cache_write_1h += other.cache_write_1h
        self.cost_cli += other.cost_cli

    def minus(self, other: ModelTokens) -> ModelTokens:
        """What was added since ``other`` (never below zero)."""
        return ModelTokens(
            max(0, self.input - other.input),
            max(0, self.output - other.output),
            max(0, self.cache_write - other.cache_write),
            max(0, self.cache_read - other.cache_read),
            max(0, self.cache_write_1h - other.cache_write_1h),
            max(0.0, self.cost_cli - other.cost_cli),
        )

    def covers(self, other: ModelTokens) -> bool:
        """Every count at least ``other``'s: could be a running total that includes it."""
        return (
            self.input >= other.input
            and self.output >= other.output
            and self.cache_write >= other.cache_write
            and self.cache_read >= other.cache_read
        )

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_write + self.cache_read

    def priced(self, model: str | None) -> float:
        from unattended.contracts.models_table import price_usage

        return price_usage(
            model,
            self.input,
            self.output,
            self.cache_write,
            self.cache_read,
            self.cache_write_1h,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_creation_tokens": self.cache_write,
            "cache_read_tokens": self.cache_read,
        }


def _copy(by_model: dict[str, ModelTokens]) -> dict[str, ModelTokens]:
    return {m: ModelTokens(**vars(t)) for m, t in by_model.items()}


@dataclass
class SessionFigures:
    """The last cumulative figures a session reported (the baseline of a resumed iteration)."""

    by_model: dict[str, ModelTokens] = field(default_factory=dict)
    total_cost_usd: float = 0.0


@dataclass
class ResultTally:
    """Every ``result`` event of one worker process, folded as they arrive (O(models) memory)."""

    main_model: str | None = None  # the init event's model: the key of modelUsage
    results: int = 0
    usage_sum: ModelTokens = field(default_factory=ModelTokens)  # Σ result.usage
    since_sum: dict[str, ModelTokens] = field(default_factory=dict)
    results_with_since: int = 0
    last: SessionFigures = field(default_factory=SessionFigures)
    last_windows: dict[str, int] = field(default_factory=dict)
    last_had_model_usage: bool = False

    def add(self, result: ResultEvent) -> None:
        self.results += 1
        self.usage_sum.add(ModelTokens.of_usage(result.usage))
        if result.model_usage_since_last_result is not None:
            self.results_with_since += 1
            for model, mu in result.model_usage_since_last_result.items():
                self.since_sum.setdefault(model, ModelTokens()).add(ModelTokens.of_model_usage(mu))
        self.last = SessionFigures(
            {m: ModelTokens.of_model_usage(mu) for m, mu in result.model_usage.items()},
            result.total_cost_usd,
        )
        self.last_had_model_usage = bool(result.model_usage)
        windows = {m: mu.context_window for m, mu in result.model_usage.items()}
        self.last_windows = {m: w for m, w in windows.items() if w}

    def context_window(self) -> int | None:
        """The window the CLI reported for the main model (else the largest it reported)."""
        if self.main_model and self.main_model in self.last_windows:
            return self.last_windows[self.main_model]
        return max(self.last_windows.values(), default=None)


@dataclass
class IterationUsage:
    """What one iteration added: tokens per model and both prices."""

    by_model: dict[str, ModelTokens]
    cost_usd_cli: float | None  # None: the CLI said nothing (a worker killed before its result)
    cost_usd_priced: float
    basis: str  # "since_last_result", "process", "session_delta", "usage", "transcript"

    @property
    def cost_usd(self) -> float:
        """The larger of the two prices: what the caps count."""
        return round(max(self.cost_usd_cli or 0.0, self.cost_usd_priced), 6)

    def totals(self) -> ModelTokens:
        sums = ModelTokens()
        for tokens in self.by_model.values():
            sums.add(tokens)
        return sums


def _one_hour_for_main(
    by_model: dict[str, ModelTokens], main: str | None, usage_sum: ModelTokens
) -> None:
    """modelUsage before 2.1.332 does not split cache writes by duration; result.usage does,
    for the main model: carry its 1-hour count over (the other models stay 5-minute)."""
    tokens = by_model.get(main or "")
    if tokens is not None and not tokens.cache_write_1h:
        tokens.cache_write_1h = min(tokens.cache_write, usage_sum.cache_write_1h)


def _looks_cumulative(tally: ResultTally, baseline: SessionFigures) -> bool:
    """Do the last figures include the baseline (2.1.332 on resume) or are they this process's
    alone (2.1.197)? Only the CLI's figures say: result.usage is this invocation's own, so
    ``modelUsage[main] − Σ usage`` is the main model's side calls (compaction) when per
    process, and at least the baseline when cumulative."""
    if not baseline.by_model:
        return False
    for model, before in baseline.by_model.items():
        now = tally.last.by_model.get(model)
        if now is None or not now.covers(before):
            return False
    main = tally.main_model if tally.main_model in tally.last.by_model else None
    if main is None or main not in baseline.by_model:
        return False  # cannot tell: counting twice is the safe error, not counting too little
    if tally.last.total_cost_usd < baseline.total_cost_usd:
        return False
    extra = tally.last.by_model[main].total - tally.usage_sum.total
    return extra >= baseline.by_model[main].total > 0


def iteration_usage(tally: ResultTally, baseline: SessionFigures | None = None) -> IterationUsage:
    """This worker's own usage; ``baseline``: the session's figures before it, when resumed."""
    if tally.results and tally.results_with_since == tally.results:
        by_model = _copy(tally.since_sum)
        cost_cli = sum(t.cost_cli for t in by_model.values())
        basis = "since_last_result"
    elif tally.last_had_model_usage:
        by_model = _copy(tally.last.by_model)
        cost_cli = tally.last.total_cost_usd
        basis = "process"
        if baseline is not None and _looks_cumulative(tally, baseline):
            by_model = {
                m: t.minus(baseline.by_model.get(m, ModelTokens())) for m, t in by_model.items()
            }
            cost_cli = max(0.0, cost_cli - baseline.total_cost_usd)
            basis = "session_delta"
        _one_hour_for_main(by_model, tally.main_model, tally.usage_sum)
    else:  # no modelUsage at all (a trimmed capture, an old CLI): the main model's usage
        by_model = {tally.main_model or "": ModelTokens(**vars(tally.usage_sum))}
        cost_cli = tally.last.total_cost_usd
        basis = "usage"
    by_model = {m: t for m, t in by_model.items() if t.total or t.cost_cli}
    priced = sum(t.priced(m or tally.main_model) for m, t in by_model.items())
    return IterationUsage(by_model, round(cost_cli, 9), round(priced, 9), basis)


def session_after(tally: ResultTally) -> SessionFigures:
    """What the session had reported once this worker was done: the next resumed worker's
    baseline (its last result's modelUsage and total_cost_usd, as printed)."""
    return SessionFigures(_copy(tally.last.by_model), tally.last.total_cost_usd)


# ----- onto the iteration record ------------------------------------------------------------


def apply_usage(record: IterationRecord, usage: IterationUsage) -> None:
    """Write one iteration's usage into its record: token sums over every model, both prices,
    and the larger as ``cost_usd``."""
    sums = usage.totals()
    record.input_tokens, record.output_tokens = sums.input, sums.output
    record.cache_creation_tokens, record.cache_read_tokens = sums.cache_write, sums.cache_read
    record.tokens_by_model = {m or "?": t.as_dict() for m, t in sorted(usage.by_model.items())}
    record.cost_usd_cli = None if usage.cost_usd_cli is None else round(usage.cost_usd_cli, 6)
    record.cost_usd_priced = round(usage.cost_usd_priced, 6)
    record.cost_usd = usage.cost_usd
    record.usage_basis = usage.basis


def settle(record: IterationRecord, previous: IterationRecord | None) -> None:
    """This iteration's own share, now that the one before it is known: a resumed session's
    cumulative figures less what the same session had reported before."""
    tally = record.usage_tally
    if not isinstance(tally, ResultTally) or not tally.results:
        return
    from unattended.contracts.cli_versions import OLDEST_TESTED, parse_version

    baseline = None
    version = parse_version(record.cli_version)
    per_invocation = version is not None and version <= (parse_version(OLDEST_TESTED) or version)
    if (
        not per_invocation  # 2.1.197 and older: measured per invocation, never cumulative
        and record.resumed_session
        and previous is not None
        and previous.session_id == record.session_id
        and isinstance(previous.session_figures, SessionFigures)
    ):
        baseline = previous.session_figures
    apply_usage(record, iteration_usage(tally, baseline))
    record.session_figures = session_after(tally)
