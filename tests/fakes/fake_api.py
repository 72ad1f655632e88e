"""A loopback fake of the Anthropic Messages API, scripted turn by turn.

Why: the end-to-end tests run the real Claude Code CLI, which must never reach the internet.
The CLI only needs `HEAD /` (its connectivity preflight) and streaming `POST /v1/messages`, so
this stdlib server answers those with Server-Sent Events shaped like the real API's stream, and
records every request so tests can assert on what the CLI sent.

    with FakeAnthropic([Turn.tool_use("Bash", {"command": "true"}), Turn.text("done")]) as api:
        env["ANTHROPIC_BASE_URL"] = api.base_url
        ...
        assert api.message_requests()[1].contains("tool_result")
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_MODEL = "claude-opus-4-8"

# What the real API calls each error status in `error.type`.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    """Ids shaped like the real ones (`msg_…`, `toolu_…`, `req_…`), unique per process."""
    return f"{prefix}_fake{next(_ids):020d}"


@dataclass(frozen=True)
class Usage:
    """Token counts of one response; the CLI sums these into `result.usage` unchanged."""

    input_tokens: int = 10
    output_tokens: int = 20
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_dict(self, *, output_tokens: int | None = None) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
            "service_tier": "standard",
        }


@dataclass(frozen=True)
class Turn:
    """One scripted answer to one `POST /v1/messages`: a streamed message or an HTTP error."""

    blocks: tuple[dict[str, Any], ...] = ()
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = "end_turn"
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0

    @classmethod
    def text(
        cls,
        text: str,
        *,
        usage: Usage | None = None,
        stop_reason: str = "end_turn",
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> Turn:
        """A plain assistant text answer (the CLI ends its loop on it)."""
        return cls(
            blocks=({"type": "text", "text": text},),
            usage=usage or Usage(),
            stop_reason=stop_reason,
            headers=tuple((headers or {}).items()),
            delay_s=delay_s,
        )

    @classmethod
    def tool_use(
        cls,
        name: str,
        tool_input: dict[str, Any],
        *,
        text: str | None = None,
        tool_use_id: str | None = None,
        usage: Usage | None = None,
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> Turn:
        """A tool call (optionally preceded by a text block); the CLI runs it and asks again."""
        blocks: list[dict[str, Any]] = []
        if text is not None:
            blocks.append({"type": "text", "text": text})
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_use_id or _new_id("toolu"),
                "name": name,
                "input": tool_input,
            }
        )
        return cls(
            blocks=tuple(blocks),
            usage=usage or Usage(),
            stop_reason="tool_use",
            headers=tuple((headers or {}).items()),
            delay_s=delay_s,
        )

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "fake error",
        *,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> Turn:
        """An HTTP error with the real API's JSON error body and the given response headers."""
        return cls(
            status=status,
            error_type=error_type or _ERROR_TYPES.get(status, "api_error"),
            error_message=message,
            headers=tuple((headers or {}).items()),
            delay_s=delay_s,
        )


# A script entry: a Turn, a plain string (= Turn.text), or a callable that sees the request body.
Script = Turn | str | Callable[[dict[str, Any]], "Turn | str"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; header names are lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    received_at: float

    def contains(self, needle: str) -> bool:
        """True when the raw body mentions `needle` anywhere (prompts, tool results, reminders)."""
        return needle in self.raw_body.decode("utf-8", "replace")


def sse_events(turn: Turn, model: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) sequence the real API streams for a successful message."""
    message = {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": turn.usage.as_dict(output_tokens=1),
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": message}),
    ]
    for index, block in enumerate(turn.blocks):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            text = block["text"]
            pieces = [text[i : i + 40] for i in range(0, len(text), 40)] or [""]
            deltas = [{"type": "text_delta", "text": p} for p in pieces]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            payload = json.dumps(block["input"])
            pieces = [payload[i : i + 40] for i in range(0, len(payload), 40)]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        for delta in deltas:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": turn.stop_reason, "stop_sequence": None},
                "usage": turn.usage.as_dict(),
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class _Handler(BaseHTTPRequestHandler):
    """Speaks HTTP/1.1 with keep-alive and chunked SSE, as the CLI's fetch expects."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # one small write per SSE event: no 40 ms stalls
    server: _Server
    timeout = 60  # an idle keep-alive connection must not pin a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log; tests read `requests` instead."""

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def do_HEAD(self) -> None:
        self.server.fake._record(self, b"")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.server.fake._record(self, b"")
        self._send_json(404, _error_body(404, "not_found_error", "no such endpoint in the fake"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = self.server.fake._record(self, raw)
        path = request.path.rstrip("/")
        try:
            if path == "/v1/messages/count_tokens":
                self._send_json(200, {"input_tokens": self.server.fake._count_tokens(request)})
            elif path == "/v1/messages":
                self._answer_messages(request)
            else:
                self._send_json(404, _error_body(404, "not_found_error", f"no route {path}"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the CLI went away mid-answer (e.g. a signal test)

    def _answer_messages(self, request: RecordedRequest) -> None:
        fake = self.server.fake
        turn = fake._next_turn(request)
        if turn.delay_s and fake._closing.wait(turn.delay_s):
            self.close_connection = True
            return
        if turn.status != 200:
            body = _error_body(turn.status, turn.error_type or "api_error", turn.error_message)
            self._send_json(turn.status, body, dict(turn.headers))
            return
        body = request.body if isinstance(request.body, dict) else {}
        model = str(body.get("model") or DEFAULT_MODEL)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", _new_id("req"))
        for name, value in turn.headers:
            self.send_header(name, value)
        self.end_headers()
        for event, data in sse_events(turn, model):
            chunk = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", _new_id("req"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _error_body(status: int, error_type: str, message: str | None) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message or f"fake {status}"},
        "request_id": _new_id("req"),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeAnthropic) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


class FakeAnthropic:
    """The scripted fake API server; start it with `with` (or `start()`/`close()`).

    turns: consumed one per `POST /v1/messages`, in order. Each is a Turn, a str (a text turn),
        or a callable taking the parsed request body and returning a Turn or str.
    final_text: the text answer given once the script is used up.
    count_tokens: the `input_tokens` answered by `POST /v1/messages/count_tokens`, or a callable
        taking the parsed body; default: a rough len(body)/4.
    """

    def __init__(
        self,
        turns: Iterable[Script] = (),
        *,
        final_text: str = "ok",
        count_tokens: int | Callable[[Any], int] | None = None,
    ) -> None:
        self._script: list[Script] = list(turns)
        self.final_text = final_text
        self._count_tokens_answer = count_tokens
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeAnthropic:
        """Bind an ephemeral loopback port and serve in a background thread."""
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-anthropic",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut open keep-alive connections, and free the port. Idempotent."""
        self._closing.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeAnthropic is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The value for ANTHROPIC_BASE_URL (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # scripting -----------------------------------------------------------------------------
    def add_turns(self, *turns: Script) -> None:
        """Append turns to the script, e.g. while a CLI run is in progress."""
        with self._lock:
            self._script.extend(turns)

    @property
    def remaining_turns(self) -> int:
        with self._lock:
            return len(self._script)

    # inspection ----------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (HEAD preflights included), oldest first; a copy."""
        with self._lock:
            return list(self._requests)

    def message_requests(self) -> list[RecordedRequest]:
        """Only the `POST /v1/messages` calls, i.e. one per agent-loop turn."""
        return [
            r for r in self.requests if r.method == "POST" and r.path.rstrip("/") == "/v1/messages"
        ]

    def wait_for_requests(
        self, count: int, timeout: float = 10.0, *, path: str = "/v1/messages"
    ) -> bool:
        """Block until `count` POSTs to `path` arrived (True) or `timeout` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                seen = sum(
                    1 for r in self._requests if r.method == "POST" and r.path.rstrip("/") == path
                )
                left = deadline - time.monotonic()
                if seen >= count:
                    return True
                if left <= 0:
                    return False
                self._lock.wait(left)

    # called by the handler threads -----------------------------------------------------------
    def _record(self, handler: BaseHTTPRequestHandler, raw: bytes) -> RecordedRequest:
        parts = urlsplit(handler.path)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            raw_body=raw,
            received_at=time.time(),
        )
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
        return request

    def _next_turn(self, request: RecordedRequest) -> Turn:
        with self._lock:
            entry: Script = self._script.pop(0) if self._script else self.final_text
        if callable(entry) and not isinstance(entry, Turn):
            entry = entry(request.body if isinstance(request.body, dict) else {})
        return Turn.text(entry) if isinstance(entry, str) else entry

    def _count_tokens(self, request: RecordedRequest) -> int:
        answer = self._count_tokens_answer
        if callable(answer):
            return int(answer(request.body))
        if answer is not None:
            return int(answer)
        return max(1, len(request.raw_body) // 4)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
