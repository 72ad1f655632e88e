"""``--context-source api``: the context size from the API's token-counting endpoint.

Imported only in that mode. One ``POST /v1/messages/count_tokens`` with the standard library
(``urllib``): what the ``anthropic`` package did here, without its 23 MB and its 1-3 s import
after every tool call. Like the package it honours ``ANTHROPIC_BASE_URL``, sends
``ANTHROPIC_API_KEY`` as ``x-api-key`` (else ``ANTHROPIC_AUTH_TOKEN`` as a bearer token), waits
10 s and never retries. The key comes from the worker's environment and is never written
anywhere. The count covers the conversation since the last compaction (not the CLI's system
prompt and tools), so the hook never reports less than the transcript's own reading.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from unattended.supervisor.hook.transcript_tail import MeterError, is_compact_boundary, parse_line

COUNTED_BLOCKS = ("text", "tool_use", "tool_result")
FALLBACK_MODEL = "claude-sonnet-4-5"
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
TIMEOUT_S = 10.0
MAX_ERROR_BODY = 300


class CountTokensError(Exception):
    """The endpoint could not be reached or did not answer with a count (the hook fails open)."""


def api_tokens(path: str, model: str | None, environ: dict[str, str] | None = None) -> int:
    """Token count of the conversation since the last compaction, from the API's counting
    endpoint (key from the environment)."""
    env = os.environ if environ is None else environ
    messages = conversation_messages(path)
    if not messages:
        raise MeterError("api: no messages to count")
    api_model = (model or FALLBACK_MODEL).replace("[1m]", "")
    answer = count_tokens(env, {"model": api_model, "messages": messages})
    tokens = answer.get("input_tokens") if isinstance(answer, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        raise CountTokensError("the answer has no input_tokens count")
    return tokens


def _headers(environ: Any) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "accept": "application/json",
        "anthropic-version": API_VERSION,
        "user-agent": "unattended-context-meter",
    }
    if environ.get("ANTHROPIC_API_KEY"):
        headers["x-api-key"] = environ["ANTHROPIC_API_KEY"]
    elif environ.get("ANTHROPIC_AUTH_TOKEN"):
        headers["authorization"] = f"Bearer {environ['ANTHROPIC_AUTH_TOKEN']}"
    else:
        raise CountTokensError("no ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN in the environment")
    return headers


def count_tokens(environ: Any, body: dict[str, Any]) -> Any:
    """POST the body; the parsed JSON answer, or CountTokensError saying what went wrong (never
    the key)."""
    base = (environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    request = urllib.request.Request(
        f"{base}/v1/messages/count_tokens",
        data=json.dumps(body, separators=(",", ":")).encode(),
        headers=_headers(environ),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(MAX_ERROR_BODY).decode("utf-8", "replace").strip()
        raise CountTokensError(f"HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CountTokensError(f"connection failed: {reason}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise CountTokensError("the answer is not JSON") from None


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
