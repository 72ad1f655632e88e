"""Reading a worker's transcript from the daemon's side: where it is, and what it cost.

A worker killed before its ``result`` event (timeout, stall, ``stop --now``) still cost money,
and the caps must count it. Its usage is in its transcript, priced as ccusage prices it (and
checked against ccusage's figures on real transcripts, ``tests/data/real/transcripts``):

- one line per content block, so a message with several blocks repeats the same ``message.id``;
  earlier lines carry partial ``output_tokens``, so the *last* line of each message counts;
- each model's tokens at that model's price, 1-hour cache writes at 2x input, a request above
  200k input tokens at its model's long-context price;
- main chain and sidechains (subagents) are both billed, including the subagent transcripts
  in ``<session>/subagents/*.jsonl`` (the compaction call's usage lives there too);
- compaction refunds nothing, so lines before a compaction boundary count too; on a resumed
  session only the lines written since this worker started are its own (``since``).

The line parsing is shared with the hook's fast path (``supervisor.hook_fast``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from unattended.supervisor.hook.transcript_tail import (
    as_int,
    assistant_usage,
    is_compact_boundary,
    latest_context,
    parse_line,
)
from unattended.supervisor.worker.accounting import IterationUsage, ModelTokens

__all__ = [
    "UsageTotals",
    "find_transcript",
    "latest_context",
    "munge_project",
    "transcript_usage",
]


def claude_dir(environ: Mapping[str, str]) -> Path | None:
    """``$CLAUDE_CONFIG_DIR`` or ``$HOME/.claude`` of the worker's environment."""
    if environ.get("CLAUDE_CONFIG_DIR"):
        return Path(environ["CLAUDE_CONFIG_DIR"]).expanduser()
    if environ.get("HOME"):
        return Path(environ["HOME"]) / ".claude"
    return None


def munge_project(project: Path, strict: bool = False) -> str:
    """The CLI's directory name for a project: ``/`` and ``.`` become ``-`` (seen in 2.1.197);
    ``strict`` turns every non-alphanumeric character into ``-``, as other versions do."""
    text = str(project)
    if strict:
        return re.sub(r"[^A-Za-z0-9]", "-", text)
    return text.replace("/", "-").replace(".", "-")


def find_transcript(environ: Mapping[str, str], project: Path, session_id: str) -> Path | None:
    """``<claude dir>/projects/<munged project>/<session>.jsonl``, or None when absent.

    Tries the project as given and resolved, both munging rules, then any project directory
    holding that session (session ids are UUIDs, so a match is the worker's).
    """
    base = claude_dir(environ)
    if base is None or not session_id or "/" in session_id or session_id.startswith("."):
        return None
    projects = base / "projects"
    name = f"{session_id}.jsonl"
    candidates: list[Path] = []
    for proj in dict.fromkeys((project, project.resolve())):
        for strict in (False, True):
            candidates.append(projects / munge_project(proj, strict) / name)
    for path in candidates:
        if path.is_file():
            return path
    try:
        found = sorted(projects.glob(f"*/{name}"))
    except OSError:
        return None
    return found[0] if found else None


@dataclass
class UsageTotals:
    """Token sums over distinct messages, per model, and their price at published prices."""

    by_model: dict[str, ModelTokens] = field(default_factory=dict)
    messages: int = 0
    cost_priced: float = 0.0
    compactions: int = 0

    def add(self, model: str | None, usage: dict) -> None:
        from unattended.contracts.models_table import request_is_long

        split = usage.get("cache_creation")
        one_hour = as_int(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else 0
        tokens = ModelTokens(
            as_int(usage.get("input_tokens")),
            as_int(usage.get("output_tokens")),
            as_int(usage.get("cache_creation_input_tokens")),
            as_int(usage.get("cache_read_input_tokens")),
            one_hour,
        )
        long = request_is_long(tokens.input, tokens.cache_write, tokens.cache_read)
        self.by_model.setdefault(model or "", ModelTokens()).add(tokens)
        self.cost_priced += _price_one(model, tokens, long)
        self.messages += 1

    def totals(self) -> tuple[int, int, int, int]:
        """(input, output, cache write, cache read) over every model."""
        sums = ModelTokens()
        for tokens in self.by_model.values():
            sums.add(tokens)
        return sums.input, sums.output, sums.cache_write, sums.cache_read

    def cost_usd(self) -> float:
        return round(self.cost_priced, 6)

    def iteration_usage(self, fallback_model: str | None = None) -> IterationUsage:
        """As one iteration's usage: priced only (the CLI said nothing)."""
        by_model = {(m or fallback_model or ""): t for m, t in self.by_model.items()}
        return IterationUsage(by_model, None, self.cost_priced, "transcript")


def _price_one(model: str | None, tokens: ModelTokens, long: bool) -> float:
    from unattended.contracts.models_table import price_usage

    return price_usage(
        model or None,
        tokens.input,
        tokens.output,
        tokens.cache_write,
        tokens.cache_read,
        tokens.cache_write_1h,
        long_context=long,
    )


def _transcript_files(path: Path) -> Iterator[Path]:
    yield path
    subagents = path.with_suffix("") / "subagents"
    if subagents.is_dir():
        yield from sorted(subagents.glob("*.jsonl"))


def _written_before(obj: dict, since: datetime) -> bool:
    """The line's timestamp is before ``since`` (a line without one is counted)."""
    stamp = obj.get("timestamp")
    if not isinstance(stamp, str):
        return False
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None or since.tzinfo is None:
        return False
    return when < since


def transcript_usage(path: Path, since: datetime | None = None) -> UsageTotals:
    """Usage of every distinct assistant message (main chain and sidechains) in the transcript
    and its subagent transcripts, the last line of each message counting; with ``since``, only
    lines written from then on. Unreadable subagent files are skipped; the main one must open.
    """
    last: dict[str, tuple[str | None, dict]] = {}
    anonymous: list[tuple[str | None, dict]] = []
    compactions = 0
    for n, file in enumerate(_transcript_files(path)):
        try:
            handle = file.open("rb")
        except OSError:
            if n == 0:
                raise
            continue
        with handle:
            for raw in handle:
                if b"assistant" not in raw and b"compact_boundary" not in raw:
                    continue
                obj = parse_line(raw)
                if obj is None or (since is not None and _written_before(obj, since)):
                    continue
                if n == 0 and is_compact_boundary(obj):
                    compactions += 1
                    continue
                found = assistant_usage(obj)
                if found is None:
                    continue
                message_id, model, usage, _sidechain = found
                if message_id is None:
                    anonymous.append((model, usage))
                else:  # written once per content block: the last line has the final counts
                    last.pop(message_id, None)
                    last[message_id] = (model, usage)
    totals = UsageTotals(compactions=compactions)
    for model, usage in (*last.values(), *anonymous):
        totals.add(model, usage)
    return totals
