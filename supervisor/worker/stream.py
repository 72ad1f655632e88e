"""Incremental parsing of a worker's ``--output-format stream-json`` stdout, in bounded memory.

The worker may print gigabytes (tool results carry whole files), so lines are split across
chunk boundaries without ever holding more than one line of at most ``MAX_LINE_BYTES``; a
line's ``type`` is sniffed from its first bytes and only the few types we read are decoded.
``user`` lines (tool results) are never decoded: whatever they say (a marker, a fake result) is
tool output, never the worker's verdict. Shapes: ``../shared/claude-cli-facts.md``.

One process may print several ``result`` events (a background task that finishes after the
answer gets its own turn and result): every one counts. Their figures are folded into a
``ResultTally`` (``accounting``), and the text of every clean one is kept for the markers.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unattended.supervisor.worker.accounting import ResultTally

if TYPE_CHECKING:
    from unattended.contracts.stream import RateLimitInfo, ResultEvent

MAX_LINE_BYTES = 4 * 1024 * 1024  # longer lines are skipped (counted), never buffered whole
SNIFF_BYTES = 64  # enough to read a leading '{"type":"…"'
SHORT_ARG_CHARS = 80
_DECODED_TYPES = frozenset({b"system", b"assistant", b"result", b"rate_limit_event"})
_TYPE_RE = re.compile(rb'\s*\{\s*"type"\s*:\s*"([A-Za-z_]*)"')
# Tool input keys that name what a tool works on, in order of preference. Never "content",
# "new_string" and the like: those are file contents.
_ARG_KEYS = ("command", "file_path", "notebook_path", "path", "pattern", "url", "query")
_ARG_KEYS_LAST = ("description", "subagent_type", "skill")
_RECENT_IDS = 256
MAX_MARKER_TEXTS = 64  # clean result texts kept for the marker rules (those naming a marker)

_NEW, _PART, _SKIP = 0, 1, 2  # line states: at a line start, buffering a line, discarding one


@dataclass(frozen=True)
class ToolCall:
    """The last tool the worker called: its name and a short argument (a command cut to 80
    characters, a path or a pattern), never file contents."""

    name: str
    arg: str


@dataclass
class StreamFacts:
    """What one worker's stream told us so far. ``result`` (the last result event) and
    ``marker_texts`` are the only verdict-bearing fields."""

    result: ResultEvent | None = None
    tally: ResultTally = field(default_factory=ResultTally)  # every result's figures
    marker_texts: list[str] = field(default_factory=list)  # clean results naming a marker
    session_id: str | None = None
    model: str | None = None
    cli_version: str | None = None
    tool_calls: int = 0
    last_tool: ToolCall | None = None
    api_retries: int = 0
    last_api_retry_status: int | None = None
    last_api_retry_error: str | None = None
    fatal_api_retry: str | None = None  # an api_retry naming an error that waiting cannot heal
    api_error: str | None = None  # "rate_limit", "server_error"… from a synthetic message
    compactions: int = 0  # compact_boundary events: the CLI compacted the conversation
    compact_pre_tokens: int | None = None  # the last compaction's context size before it
    rate_limit: RateLimitInfo | None = None
    assistant_messages: int = 0  # distinct message ids
    context_peak_tokens: int = 0  # input + cache creation + cache read, main thread only
    last_output_at: float | None = None  # monotonic
    bytes_seen: int = 0
    lines: int = 0
    lines_decoded: int = 0
    lines_oversized: int = 0  # longer than MAX_LINE_BYTES: not parsed
    lines_invalid: int = 0  # not JSON, or a modelled event that failed validation


def short_arg(name: str, tool_input: Any) -> str:
    """One line of at most 80 characters saying what a tool call works on."""
    if not isinstance(tool_input, dict):
        return ""
    for key in (*_ARG_KEYS, *_ARG_KEYS_LAST):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return _one_line(value)
    return ""


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SHORT_ARG_CHARS else flat[: SHORT_ARG_CHARS - 1] + "…"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class StreamReader:
    """Feed it raw stdout bytes as they arrive; read ``facts`` at any time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.facts = StreamFacts()
        self._clock = clock
        self._buf = bytearray()
        self._state = _NEW
        self._sniffed = False
        self._tool_ids: deque[str] = deque(maxlen=_RECENT_IDS)
        self._message_ids: deque[str] = deque(maxlen=_RECENT_IDS)

    def feed(self, chunk: bytes) -> None:
        """Consume one chunk; lines may span chunks."""
        if not chunk:
            return
        facts = self.facts
        facts.bytes_seen += len(chunk)
        facts.last_output_at = self._clock()
        start, size = 0, len(chunk)
        while start < size:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                self._piece(chunk, start, size)
                return
            self._line_end(chunk, start, nl)
            start = nl + 1

    def finish(self) -> None:
        """End of stream: a last line without a newline still counts."""
        if self._state == _PART:
            self._line(bytes(self._buf))
        self._reset()

    # -- line splitting -------------------------------------------------------------------

    def _line_end(self, chunk: bytes, start: int, end: int) -> None:
        """A newline at ``end`` completes the current line."""
        if self._state == _SKIP:
            self._reset()
            return
        if self._state == _NEW:  # the whole line is in this chunk: no copy unless decoded
            if end - start > MAX_LINE_BYTES:
                self.facts.lines += 1
                self.facts.lines_oversized += 1
            elif self._wanted(chunk[start : start + SNIFF_BYTES]):
                self._line(chunk[start:end])
            else:
                self.facts.lines += 1
            return
        self._piece(chunk, start, end)
        if self._state == _PART:
            if self._sniffed or self._wanted(bytes(self._buf[:SNIFF_BYTES])):
                self._line(bytes(self._buf))
            else:
                self.facts.lines += 1
        self._reset()

    def _piece(self, chunk: bytes, start: int, end: int) -> None:
        """Part of a line with no newline yet: buffer it, or decide to skip the line."""
        if self._state == _SKIP:
            return
        self._state = _PART
        self._buf += memoryview(chunk)[start:end]
        if not self._sniffed and len(self._buf) >= SNIFF_BYTES:
            self._sniffed = True
            if not self._wanted(bytes(self._buf[:SNIFF_BYTES])):
                self._skip(oversized=False)
                return
        if len(self._buf) > MAX_LINE_BYTES:
            self._skip(oversized=True)

    def _skip(self, oversized: bool) -> None:
        self.facts.lines += 1
        self.facts.lines_oversized += oversized
        self._buf = bytearray()  # give the memory back, not just the length
        self._state = _SKIP

    def _reset(self) -> None:
        if self._buf:
            self._buf = bytearray()
        self._state = _NEW
        self._sniffed = False

    @staticmethod
    def _wanted(head: bytes) -> bool:
        """Decode this line? Only the types we read; a line whose type does not lead is."""
        match = _TYPE_RE.match(head)
        return match is None or match.group(1) in _DECODED_TYPES

    # -- events ---------------------------------------------------------------------------

    def _line(self, line: bytes) -> None:
        facts = self.facts
        facts.lines += 1
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except ValueError:
            facts.lines_invalid += 1
            return
        if not isinstance(event, dict):
            facts.lines_invalid += 1
            return
        facts.lines_decoded += 1
        kind = event.get("type")
        if kind == "assistant":
            self._on_assistant(event)
        elif kind == "system":
            self._on_system(event)
        elif kind == "result":
            self._on_result(event)
        elif kind == "rate_limit_event":
            self._on_rate_limit(event)

    def _on_assistant(self, event: dict[str, Any]) -> None:
        facts = self.facts
        message = event.get("message")
        if not isinstance(message, dict):
            return
        if event.get("error") and message.get("model") == "<synthetic>":
            facts.api_error = str(event["error"])
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") == "tool_use":
                tool_id = block.get("id")
                if isinstance(tool_id, str):
                    if tool_id in self._tool_ids:
                        continue
                    self._tool_ids.append(tool_id)
                name = str(block.get("name") or "?")
                facts.tool_calls += 1
                facts.last_tool = ToolCall(name, short_arg(name, block.get("input")))
        message_id = message.get("id")
        if not isinstance(message_id, str) or message_id in self._message_ids:
            return  # one line per content block, same message: count its usage once
        self._message_ids.append(message_id)
        facts.assistant_messages += 1
        usage = message.get("usage")
        if isinstance(usage, dict) and event.get("parent_tool_use_id") is None:
            context = (
                _int(usage.get("input_tokens"))
                + _int(usage.get("cache_creation_input_tokens"))
                + _int(usage.get("cache_read_input_tokens"))
            )
            facts.context_peak_tokens = max(facts.context_peak_tokens, context)

    def _on_system(self, event: dict[str, Any]) -> None:
        from pydantic import ValidationError

        from unattended.contracts.stream import ApiRetryEvent, CompactBoundaryEvent, InitEvent
        from unattended.safety.api_errors import retry_cannot_heal

        facts = self.facts
        subtype = event.get("subtype")
        try:
            if subtype == "init":  # a process may print a second one (after a background task)
                init = InitEvent.model_validate(event)
                facts.session_id = init.session_id or facts.session_id
                facts.model = init.model or facts.model
                facts.tally.main_model = facts.model
                facts.cli_version = init.claude_code_version or facts.cli_version
            elif subtype == "api_retry":
                retry = ApiRetryEvent.model_validate(event)
                facts.api_retries += 1
                facts.last_api_retry_status = retry.error_status
                facts.last_api_retry_error = retry.error
                if facts.fatal_api_retry is None and retry_cannot_heal(
                    retry.error_status, retry.error
                ):
                    facts.fatal_api_retry = f"{retry.error or 'error'} ({retry.error_status})"
            elif subtype == "compact_boundary":
                boundary = CompactBoundaryEvent.model_validate(event)
                facts.compactions += 1
                facts.compact_pre_tokens = boundary.compact_metadata.pre_tokens
        except ValidationError:
            facts.lines_invalid += 1

    def _on_result(self, event: dict[str, Any]) -> None:
        from pydantic import ValidationError

        from unattended.contracts.stream import ResultEvent

        try:
            result = ResultEvent.model_validate(event)
        except ValidationError:
            self.facts.lines_invalid += 1
            return
        facts = self.facts
        facts.result = result
        facts.tally.add(result)
        facts.session_id = result.session_id or facts.session_id
        text = result.result
        clean = not result.is_error and result.subtype == "success"
        if clean and text and "UNATTENDED_" in text and len(facts.marker_texts) < MAX_MARKER_TEXTS:
            facts.marker_texts.append(text)

    def _on_rate_limit(self, event: dict[str, Any]) -> None:
        from pydantic import ValidationError

        from unattended.contracts.stream import RateLimitEvent

        try:
            self.facts.rate_limit = RateLimitEvent.model_validate(event).rate_limit_info
        except ValidationError:
            self.facts.lines_invalid += 1
