"""The API count mode speaks HTTP with the standard library (no `anthropic` package): the
request the package sent, the answers it failed open on (loopback servers only)."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fakes.fake_api import FakeAnthropic
from tests.supervisor.hook.test_meter import WARN_150K, hook_input, meter
from tests.supervisor.hook.transcripts import Transcript
from unattended.supervisor.hook.api import CountTokensError, api_tokens
from unattended.supervisor.worker.settings_file import hook_command

KEY = "sk-ant-api-test-key-never-logged"


def transcript(tmp_path: Path) -> Path:
    t = Transcript(tmp_path / "t.jsonl").user("Fix the tests.")
    t.assistant("m1", input_tokens=150_000, blocks=2).tool_result("3 failed")
    return t.write()


def test_request_matches_the_packages(tmp_path: Path) -> None:
    with FakeAnthropic(count_tokens=123_456) as api:
        env = {"ANTHROPIC_BASE_URL": api.base_url + "/", "ANTHROPIC_API_KEY": KEY}
        assert api_tokens(str(transcript(tmp_path)), "claude-opus-4-8[1m]", env) == 123_456
        (request,) = api.requests
    assert (request.method, request.path) == ("POST", "/v1/messages/count_tokens")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.body["model"] == "claude-opus-4-8"
    assert [m["role"] for m in request.body["messages"]] == ["user", "assistant", "user"]


def test_auth_token_is_sent_as_bearer(tmp_path: Path) -> None:
    with FakeAnthropic(count_tokens=7) as api:
        env = {"ANTHROPIC_BASE_URL": api.base_url, "ANTHROPIC_AUTH_TOKEN": KEY}
        assert api_tokens(str(transcript(tmp_path)), None, env) == 7
        (request,) = api.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "claude-sonnet-4-5"


def test_no_credential_is_an_error_without_a_request(tmp_path: Path) -> None:
    with pytest.raises(CountTokensError, match="no ANTHROPIC_API_KEY"):
        api_tokens(str(transcript(tmp_path)), None, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"})


@contextmanager
def answering(status: int, body: bytes) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b'{"type":"error","error":{"type":"authentication_error"}}', "HTTP 401: "),
        (200, b"<html>proxy</html>", "the answer is not JSON"),
        (200, b'{"input_tokens": "many"}', "the answer has no input_tokens count"),
    ],
)
def test_bad_answers_fail_open(tmp_path: Path, hermetic_env: dict, status, body, error) -> None:
    state_dir = tmp_path / ".unattended"
    with answering(status, body) as url:
        env = {
            **hermetic_env,
            "UNATTENDED_STATE_DIR": str(state_dir),
            "UNATTENDED_CONTEXT_WINDOW": "200000",
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": url,
        }
        proc = subprocess.run(
            hook_command(_api_settings()),
            input=hook_input(transcript(tmp_path)),
            env=env,
            capture_output=True,
            timeout=60,
        )
    assert (proc.returncode, proc.stdout.decode()) == (0, WARN_150K)
    m = meter(state_dir)
    assert m["failures"] == 1 and m["last_error"].startswith(f"api: CountTokensError: {error}")
    assert KEY not in (state_dir / "context-meter.json").read_text()


def _api_settings():  # noqa: ANN202
    from unattended.contracts.settings import Settings

    return Settings(context_source="api")


def test_api_mode_never_imports_the_anthropic_package(tmp_path: Path) -> None:
    code = (
        "import sys; from unattended.supervisor.hook import api, meter; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('anthropic', 'httpx', 'pydantic', 'typer'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert json.loads(out) == []
