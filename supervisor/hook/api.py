"""``--context-source api``: the context size from the API's token-counting endpoint.

Kept out of ``supervisor.hook_fast`` (imported only in that mode): it needs the ``anthropic``
package, whose import alone costs about a second. The API key comes from the worker's
environment and is never written anywhere. The count covers the conversation since the last
compaction (not the CLI's system prompt and tools), so the hook never reports less than the
transcript's own reading.
"""

from __future__ import annotations

from typing import Any

from unattended.supervisor.hook.transcript_tail import MeterError, is_compact_boundary, parse_line

COUNTED_BLOCKS = ("text", "tool_use", "tool_result")
FALLBACK_MODEL = "claude-sonnet-4-5"


def api_tokens(path: str, model: str | None) -> int:
    """Token count of the conversation since the last compaction, from the API's counting
    endpoint (the ``anthropic`` package, imported only here; key from the environment)."""
    import anthropic

    messages = conversation_messages(path)
    if not messages:
        raise MeterError("api: no messages to count")
    client = anthropic.Anthropic(max_retries=0, timeout=10.0)
    api_model = (model or FALLBACK_MODEL).replace("[1m]", "")
    return int(client.messages.count_tokens(model=api_model, messages=messages).input_tokens)


def conversation_messages(path: str) -> list[dict[str, Any]]:
    """Main-chain user/assistant messages after the last compaction, merged into alternating
    API messages (thinking blocks dropped: they cannot be replayed without signatures)."""
    out: list[dict[str, Any]] = []
    with open(path, "rb") as f:
        for raw in f:
            obj = parse_line(raw)
            if obj is None:
                continue
            if is_compact_boundary(obj):
                out = []
                continue
            if obj.get("type") not in ("user", "assistant") or obj.get("isSidechain"):
                continue
            message = obj.get("message")
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                continue
            content = message.get("content")
            if isinstance(content, str):
                blocks = [{"type": "text", "text": content}]
            elif isinstance(content, list):
                blocks = [
                    b for b in content if isinstance(b, dict) and b.get("type") in COUNTED_BLOCKS
                ]
            else:
                continue
            if not blocks:
                continue
            if out and out[-1]["role"] == message["role"]:
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": message["role"], "content": blocks})
    while out and out[0]["role"] != "user":
        out.pop(0)
    return out
