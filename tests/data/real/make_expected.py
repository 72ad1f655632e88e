#!/usr/bin/env python3
"""Recompute streams/expected.json from the stream-json captures in streams/*.jsonl.

Run: python3 tests/data/real/make_expected.py
"""

import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
STREAMS = HERE / "streams"
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
MU_KEYS = (
    "inputTokens",
    "outputTokens",
    "cacheReadInputTokens",
    "cacheCreationInputTokens",
    "costUSD",
    "contextWindow",
)


def last_line(text):
    if not isinstance(text, str):
        return None
    lines = [ln for ln in text.rstrip("\n").split("\n")]
    return lines[-1][:200] if lines else ""


def summarize(path):
    results, init = [], None
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        ev = json.loads(raw)
        if ev.get("type") == "system" and ev.get("subtype") == "init" and init is None:
            init = ev
        if ev.get("type") == "result":
            usage = ev.get("usage") or {}
            mu = ev.get("modelUsage") or {}
            results.append(
                {
                    "subtype": ev.get("subtype"),
                    "is_error": ev.get("is_error"),
                    "total_cost_usd": ev.get("total_cost_usd"),
                    "usage": {k: usage.get(k) for k in USAGE_KEYS},
                    "modelUsage": {m: {k: v.get(k) for k in MU_KEYS} for m, v in mu.items()},
                    "result_last_line": last_line(ev.get("result")),
                }
            )
    return {
        "result_count": len(results),
        "results": results,
        "claude_code_version": (init or {}).get("claude_code_version"),
        "init_model": (init or {}).get("model"),
    }


def main():
    out = {p.name: summarize(p) for p in sorted(STREAMS.glob("*.jsonl"))}
    text = json.dumps(out, indent=1, ensure_ascii=False) + "\n"
    (STREAMS / "expected.json").write_text(text, encoding="utf-8")
    print(f"wrote {len(out)} entries to {STREAMS / 'expected.json'}")


if __name__ == "__main__":
    main()
