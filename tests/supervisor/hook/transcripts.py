"""Transcript lines in the shape Claude Code 2.1.197 writes them (see claude-cli-facts.md).

One line per content block, repeating ``message.id`` and the final usage; sidechain lines carry
``isSidechain: true``; a compaction writes a ``system``/``compact_boundary`` line.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

SESSION = "5f0c1b7e-2f64-4f3e-9a53-0c6a9f1d2b11"
CWD = "/work/project"


class Transcript:
    """Builds a transcript file line by line."""

    def __init__(self, path: Path, session: str = SESSION) -> None:
        self.path = path
        self.session = session
        self.parent: str | None = None
        self.lines: list[dict[str, Any]] = []
        self._n = 0

    def _base(self, kind: str, sidechain: bool) -> dict[str, Any]:
        self._n += 1
        line_uuid = str(uuid.UUID(int=self._n))
        line = {
            "parentUuid": self.parent,
            "isSidechain": sidechain,
            "userType": "external",
            "cwd": CWD,
            "sessionId": self.session,
            "version": "2.1.197",
            "gitBranch": "work",
            "entrypoint": "sdk-cli",
            "type": kind,
            "uuid": line_uuid,
            "timestamp": f"2026-11-23T03:{self._n // 60 % 60:02d}:{self._n % 60:02d}.000Z",
        }
        self.parent = line_uuid
        return line

    def user(self, text: str = "Fix the tests.", sidechain: bool = False) -> Transcript:
        line = self._base("user", sidechain)
        line["message"] = {"role": "user", "content": text}
        self.lines.append(line)
        return self

    def tool_result(self, content: str, tool_use_id: str = "toolu_1") -> Transcript:
        line = self._base("user", False)
        line["message"] = {
            "role": "user",
            "content": [{"tool_use_id": tool_use_id, "type": "tool_result", "content": content}],
        }
        line["toolUseResult"] = {"stdout": content, "stderr": "", "interrupted": False}
        self.lines.append(line)
        return self

    def assistant(
        self,
        msg_id: str,
        *,
        input_tokens: int = 10,
        cache_creation: int = 0,
        cache_read: int = 0,
        output_tokens: int = 20,
        blocks: int = 1,
        sidechain: bool = False,
        model: str = "claude-opus-4-8",
    ) -> Transcript:
        """One message written as ``blocks`` lines (text, then tool_use blocks), same id/usage."""
        usage = {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read,
            "output_tokens": output_tokens,
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
            "cache_creation": {
                "ephemeral_1h_input_tokens": 0,
                "ephemeral_5m_input_tokens": cache_creation,
            },
        }
        for b in range(blocks):
            block: dict[str, Any] = (
                {"type": "text", "text": "Looking at the assistant's code."}
                if b == 0
                else {
                    "type": "tool_use",
                    "id": f"toolu_{msg_id}_{b}",
                    "name": "Bash",
                    "input": {"command": "pytest -q", "description": "run tests"},
                }
            )
            line = self._base("assistant", sidechain)
            line["requestId"] = f"req_{msg_id}"
            line["message"] = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block],
                "stop_reason": "tool_use" if blocks > 1 else "end_turn",
                "stop_sequence": None,
                "usage": dict(usage),
            }
            self.lines.append(line)
        return self

    def compact_boundary(self, pre_tokens: int = 155_000) -> Transcript:
        line = self._base("system", False)
        line.update(
            parentUuid=None,
            logicalParentUuid=self.lines[-1]["uuid"] if self.lines else None,
            subtype="compact_boundary",
            content="Conversation compacted",
            isMeta=False,
            level="info",
            compactMetadata={"trigger": "auto", "preTokens": pre_tokens},
        )
        self.lines.append(line)
        return self

    def summary(self) -> Transcript:
        line = self._base("user", False)
        line.update(isCompactSummary=True, isVisibleInTranscriptOnly=True)
        line["message"] = {"role": "user", "content": "This session is being continued..."}
        self.lines.append(line)
        return self

    def synthetic_error(self) -> Transcript:
        line = self._base("assistant", False)
        line["error"] = "rate_limit"
        line["isApiErrorMessage"] = True
        line["message"] = {
            "id": str(uuid.uuid4()),
            "model": "<synthetic>",
            "role": "assistant",
            "type": "message",
            "content": [{"type": "text", "text": "API Error: Request rejected (429)"}],
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        self.lines.append(line)
        return self

    def raw(self, text: str) -> Transcript:
        self.lines.append({"__raw__": text})
        return self

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", encoding="utf-8") as f:
            for line in self.lines:
                if "__raw__" in line:
                    f.write(line["__raw__"] + "\n")
                else:
                    f.write(json.dumps(line, separators=(",", ":")) + "\n")
        return self.path
