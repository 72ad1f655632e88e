"""Budget alerts: 80 % warn, 90 % critical (with a notification), each logged once per run.
The 95 % stop is a cap, decided in ``safety``."""

from __future__ import annotations

from collections.abc import Callable

from unattended.contracts.settings import Settings
from unattended.contracts.state import RunState


class BudgetAlerts:
    def __init__(self) -> None:
        self._said: set[tuple[str, str]] = set()

    def new_alerts(self, state: RunState, settings: Settings) -> list[tuple[str, str]]:
        """(level, message) for every cap that crossed a level not reported before."""
        from unattended.safety.budget import alert_level

        caps: tuple[tuple[str, float, float | None, Callable[[float], str]], ...] = (
            ("cost", state.cost_usd, settings.max_cost_usd, lambda v: f"${v:,.2f}"),
            ("tokens", state.total_tokens, settings.max_tokens, lambda v: f"{int(v):,} tokens"),
        )
        found = []
        for name, used, cap, fmt in caps:
            level = alert_level(used, cap)
            if level == "ok" or cap is None or (name, level) in self._said:
                continue
            self._said.add((name, level))
            found.append(
                (
                    level,
                    f"budget {level}: {name} at {100 * used / cap:.0f}% "
                    f"({fmt(used)} of {fmt(cap)})",
                )  # fmt: skip
            )
        return found
