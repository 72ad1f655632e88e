"""Reading a worker's transcript from the daemon's side: where it is, and what it cost.

A worker killed before its ``result`` event (timeout, stall, ``stop --now``) still cost money,
and the caps must count it. Its usage is in its transcript: one line per content block, so a
message with several blocks repeats the same ``message.id`` and usage and must be counted once.
Main chain and sidechains (subagents) are both billed, so both are summed, including subagent
transcripts kept in ``<session>/subagents/*.jsonl`` by newer CLI versions. Compaction does not
refund anything, so lines before a compaction boundary count too.

The line parsing is shared with the hook's fast path (``supervisor.hook_fast``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from unattended.supervisor.hook.transcript_tail import (
    as_int,
    assistant_usage,
    latest_context,
    parse_line,
)

__all__ = [
    "UsageTotals",
    "find_transcript",
    "latest_context",
    "munge_project",
    "transcript_usage",
    "transcript_usage_totals",
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
    """Token sums over distinct messages, per model."""

    by_model: dict[str, list[int]] = field(default_factory=dict)  # [in, out, cwrite, cread]
    messages: int = 0

    def add(self, model: str | None, usage: dict) -> None:
        row = self.by_model.setdefault(model or "", [0, 0, 0, 0])
        row[0] += as_int(usage.get("input_tokens"))
        row[1] += as_int(usage.get("output_tokens"))
        row[2] += as_int(usage.get("cache_creation_input_tokens"))
        row[3] += as_int(usage.get("cache_read_input_tokens"))
        self.messages += 1

    def totals(self) -> tuple[int, int, int, int]:
        sums = [0, 0, 0, 0]
        for row in self.by_model.values():
            for i, value in enumerate(row):
                sums[i] += value
        return sums[0], sums[1], sums[2], sums[3]

    def cost_usd(self) -> float:
        """Each model's tokens at that model's price."""
        from unattended.contracts.models_table import price_usage

        return round(sum(price_usage(m or None, *row) for m, row in self.by_model.items()), 6)


def _transcript_files(path: Path) -> Iterator[Path]:
    yield path
    subagents = path.with_suffix("") / "subagents"
    if subagents.is_dir():
        yield from sorted(subagents.glob("*.jsonl"))


def transcript_usage(path: Path) -> UsageTotals:
    """Usage of every distinct assistant message (main chain and sidechains) in the transcript
    and its subagent transcripts. Unreadable subagent files are skipped; the main one must open.
    """
    totals = UsageTotals()
    seen: set[str] = set()
    for n, file in enumerate(_transcript_files(path)):
        try:
            handle = file.open("rb")
        except OSError:
            if n == 0:
                raise
            continue
        with handle:
            for raw in handle:
                if b"assistant" not in raw:
                    continue
                obj = parse_line(raw)
                found = assistant_usage(obj) if obj is not None else None
                if found is None:
                    continue
                message_id, model, usage, _sidechain = found
                if message_id is not None:
                    if message_id in seen:
                        continue  # the same message, written once per content block
                    seen.add(message_id)
                totals.add(model, usage)
    return totals


def transcript_usage_totals(path: Path) -> tuple[str | None, int, int, int, int]:
    """(model, input, output, cache write, cache read) summed over distinct messages.

    When several models appear (a subagent on a cheaper model), the most expensive one is
    returned, so pricing the sums with it never under-counts against a cap.
    """
    from unattended.contracts.models_table import price_for

    totals = transcript_usage(path)
    models = [m for m in totals.by_model if m]
    model = max(models, key=lambda m: (price_for(m).input, price_for(m).output), default=None)
    inp, out, cwrite, cread = totals.totals()
    return model, inp, out, cwrite, cread
