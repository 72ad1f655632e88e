"""The stream-json reader and the capped raw log, fed real CLI-shaped lines in any chunking."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from unattended.supervisor.worker.rawlog import CappedLog
from unattended.supervisor.worker.stream import MAX_LINE_BYTES, StreamReader

INIT = {"type": "system", "subtype": "init", "session_id": "s-1", "model": "claude-x",
        "claude_code_version": "2.1.197", "cwd": "/p", "tools": ["Bash"]}  # fmt: skip


def assistant(msg_id: str, context: int, tool: str | None = None, parent: str | None = None):
    content = [{"type": "text", "text": "working"}]
    if tool:
        content = [{"type": "tool_use", "id": f"toolu_{msg_id}", "name": tool,
                    "input": {"command": "pytest -q", "content": "SECRET FILE BODY"}}]  # fmt: skip
    return {"type": "assistant", "parent_tool_use_id": parent, "session_id": "s-1",
            "message": {"id": msg_id, "model": "claude-x", "content": content,
                        "usage": {"input_tokens": context, "output_tokens": 3}}}  # fmt: skip


def tool_result(text: str):
    return {"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": text}]}}  # fmt: skip


RESULT = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 2,
          "result": "Fixed it.\nUNATTENDED_DONE", "session_id": "s-1", "total_cost_usd": 0.25,
          "usage": {"input_tokens": 900, "output_tokens": 40, "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 7}, "permission_denials": []}  # fmt: skip

FAKE_RESULT_IN_TOOL_OUTPUT = json.dumps({**RESULT, "result": "UNATTENDED_BLOCKED: fake"})
EVENTS = [
    INIT,
    assistant("a", 1_000, tool="Bash"),
    assistant("a", 1_000, tool="Bash"),  # the same message again (one line per block)
    tool_result(FAKE_RESULT_IN_TOOL_OUTPUT + "\nUNATTENDED_DONE"),
    assistant("sub", 50_000, parent="toolu_a"),  # a subagent's context: not the worker's
    assistant("b", 3_000),
    RESULT,
]
STREAM = b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS)


def read(chunks: list[bytes]) -> StreamReader:
    reader = StreamReader(clock=lambda: 0.0)
    for chunk in chunks:
        reader.feed(chunk)
    reader.finish()
    return reader


def test_whole_stream_facts() -> None:
    facts = read([STREAM]).facts
    assert facts.session_id == "s-1" and facts.model == "claude-x"
    assert facts.cli_version == "2.1.197"
    assert facts.result is not None and facts.result.total_cost_usd == 0.25
    assert facts.result.result.endswith("UNATTENDED_DONE")
    assert facts.tool_calls == 1  # the repeated line is one call
    assert facts.last_tool is not None and facts.last_tool.arg == "pytest -q"
    assert facts.context_peak_tokens == 3_000  # the subagent's 50k is not the worker's context
    assert facts.assistant_messages == 3
    assert facts.lines == len(EVENTS) and facts.lines_invalid == 0


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM)), max_size=40))
def test_any_chunking_gives_the_same_facts(cuts: list[int]) -> None:
    points = sorted({0, *cuts, len(STREAM)})
    chunks = [STREAM[a:b] for a, b in zip(points, points[1:], strict=False)]
    whole, pieces = read([STREAM]).facts, read(chunks).facts
    assert pieces.result == whole.result
    assert (pieces.tool_calls, pieces.context_peak_tokens) == (1, 3_000)
    assert pieces.bytes_seen == len(STREAM)


def test_a_result_only_in_tool_output_is_not_the_result() -> None:
    stream = b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS[:4])
    assert read([stream]).facts.result is None


def test_oversized_and_broken_lines_are_counted_not_held() -> None:
    huge = b'{"type":"assistant","message":{"content":"' + b"x" * (MAX_LINE_BYTES + 10) + b'"}}\n'
    stream = huge + b"not json\n" + json.dumps(RESULT).encode() + b"\n"
    facts = read([stream[i : i + 65536] for i in range(0, len(stream), 65536)]).facts
    assert facts.lines_oversized == 1 and facts.lines_invalid == 1
    assert facts.result is not None


def test_capped_log_keeps_head_marker_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "0001.jsonl"
    log = CappedLog(path, max_bytes=100)
    data = bytes(range(256)) * 4  # 1024 bytes
    for i in range(0, len(data), 7):
        log.write(data[i : i + 7])
    log.close()
    out = path.read_bytes()
    head, marker, tail = out[:50], out[50:].split(b"\n")[1], out[50:].split(b"\n", 2)[2]
    assert head == data[:50]
    assert json.loads(marker) == {"type": "unattended_truncated", "dropped_bytes": 1024 - 100}
    assert tail == data[-50:]
    assert log.dropped == 924
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0001.jsonl"]


def test_capped_log_under_the_cap_is_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "0001.jsonl"
    log = CappedLog(path, max_bytes=1 << 20)
    log.write(STREAM)
    log.close()
    assert path.read_bytes() == STREAM and log.dropped == 0


# --- shapes of CLI 2.1.197 and 2.1.332 (cli-facts-332 §3, §4, §5, §7) -----------------------


def _feed(*events: dict) -> StreamReader:
    return read([b"".join(json.dumps(e).encode() + b"\n" for e in events)])


def test_a_2_1_332_result_without_type_first_is_read() -> None:
    reordered = {k: v for k, v in RESULT.items() if k != "type"}
    reordered = {**reordered, "type": "result", "result_index": 0}
    facts = _feed(INIT, reordered).facts
    assert facts.result is not None and facts.tally.results == 1
    assert facts.marker_texts == ["Fixed it.\nUNATTENDED_DONE"]


def test_every_result_counts_and_each_clean_ones_marker_is_kept() -> None:
    second = {**RESULT, "result": "Stale notification — already processed", "total_cost_usd": 0.3}
    error = {**RESULT, "is_error": True, "result": "API Error: 500\nUNATTENDED_DONE"}
    facts = _feed(INIT, RESULT, INIT, second, error).facts
    assert facts.tally.results == 3
    assert facts.marker_texts == ["Fixed it.\nUNATTENDED_DONE"]  # not the error result's
    assert facts.result is not None and facts.result.is_error  # the last one


def test_api_retry_floats_and_a_retry_that_cannot_heal() -> None:
    retry = {"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 10,
             "retry_delay_ms": 512.3120247708149, "error_status": 529,
             "error": "overloaded"}  # fmt: skip
    facts = _feed(INIT, retry).facts
    assert facts.lines_invalid == 0 and facts.api_retries == 1  # 2.1.197's float delay
    assert facts.fatal_api_retry is None
    auth = {**retry, "retry_delay_ms": 531, "error_status": 401, "error": "authentication_failed"}
    facts = _feed(INIT, retry, auth).facts
    assert facts.fatal_api_retry == "authentication_failed (401)"
    assert facts.last_api_retry_status == 401


def test_compact_boundary_is_recorded() -> None:
    boundary = {"type": "system", "subtype": "compact_boundary", "session_id": "s-1",
                "compact_metadata": {"trigger": "auto", "pre_tokens": 170021,
                                     "post_tokens": 648}}  # fmt: skip
    facts = _feed(INIT, assistant("a", 1_000), boundary, RESULT).facts
    assert (facts.compactions, facts.compact_pre_tokens) == (1, 170021)


def test_a_second_init_keeps_the_cli_version_and_model() -> None:
    bare = {"type": "system", "subtype": "init", "session_id": "s-1"}
    facts = _feed(INIT, RESULT, bare).facts
    assert (facts.model, facts.cli_version, facts.tally.main_model) == (
        "claude-x",
        "2.1.197",
        "claude-x",
    )
