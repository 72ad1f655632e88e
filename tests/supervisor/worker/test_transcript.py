"""Pricing a worker killed before its result: find its transcript, sum distinct messages."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.supervisor.hook.transcripts import SESSION, Transcript
from unattended.contracts.models_table import price_usage
from unattended.supervisor.worker.transcript import (
    find_transcript,
    munge_project,
    transcript_usage,
)


def test_munge_like_the_cli() -> None:
    assert munge_project(Path("/tmp/pytest-1/test_x0/my.repo")) == "-tmp-pytest-1-test_x0-my-repo"
    assert munge_project(Path("/a/b_c.d"), strict=True) == "-a-b-c-d"


def test_find_transcript_home_and_config_dir(tmp_path: Path) -> None:
    project = tmp_path / "proj.x"
    project.mkdir()
    home = tmp_path / "home"
    want = home / ".claude" / "projects" / munge_project(project) / f"{SESSION}.jsonl"
    env = {"HOME": str(home)}
    assert find_transcript(env, project, SESSION) is None
    want.parent.mkdir(parents=True)
    want.write_text("")
    assert find_transcript(env, project, SESSION) == want
    assert find_transcript(env, project, "../../etc/passwd") is None
    assert find_transcript({}, project, SESSION) is None
    config = tmp_path / "cfg"
    other = config / "projects" / "-somewhere-else" / f"{SESSION}.jsonl"
    other.parent.mkdir(parents=True)
    other.write_text("")
    # CLAUDE_CONFIG_DIR wins over HOME; an unexpected munging is still found by session id.
    assert find_transcript({**env, "CLAUDE_CONFIG_DIR": str(config)}, project, SESSION) == other


def test_totals_dedup_by_message_id_and_include_sidechains(tmp_path: Path) -> None:
    t = Transcript(tmp_path / "s.jsonl").user()
    t.assistant(
        "m1", input_tokens=100, cache_creation=1_000, cache_read=0, output_tokens=50, blocks=3
    )
    t.tool_result("ok")
    t.assistant(
        "m2", input_tokens=10, cache_creation=200, cache_read=1_000, output_tokens=70, blocks=2
    )
    t.user("sub task", sidechain=True)
    t.assistant(
        "s1",
        input_tokens=7,
        cache_read=300,
        output_tokens=9,
        sidechain=True,
        model="claude-haiku-4-5-20251001",
        blocks=2,
    )
    t.compact_boundary().summary()
    t.assistant("m3", input_tokens=1, cache_read=5, output_tokens=3)
    t.synthetic_error()
    path = t.write()
    totals = transcript_usage(path)
    assert totals.totals() == (118, 132, 1_200, 1_305)
    assert totals.messages == 4
    haiku = totals.by_model["claude-haiku-4-5-20251001"]
    assert (haiku.input, haiku.output, haiku.cache_write, haiku.cache_read) == (7, 9, 0, 300)
    # Each model at its own price, not every token at the priciest model's.
    exact = price_usage("claude-opus-4-8", 111, 123, 1_200, 1_005) + price_usage(
        "claude-haiku-4-5-20251001", 7, 9, 0, 300
    )
    assert totals.cost_priced == pytest.approx(exact)
    assert totals.compactions == 1


def test_subagent_transcripts_are_counted(tmp_path: Path) -> None:
    main = Transcript(tmp_path / f"{SESSION}.jsonl").user().assistant("m1", input_tokens=5)
    path = main.write()
    sub = Transcript(tmp_path / SESSION / "subagents" / "agent-a1.jsonl")
    sub.user("task", sidechain=True).assistant("a1", input_tokens=40, sidechain=True, blocks=2)
    sub.write()
    assert transcript_usage(path).totals()[0] == 45


def test_missing_transcript_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        transcript_usage(tmp_path / "none.jsonl")


def test_empty_and_garbage_transcripts(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_bytes(b'\x00\xff\n[1]\n{"type":"assistant"}\n{"type":"assistant","message":7}\n')
    totals = transcript_usage(path)
    assert totals.totals() == (0, 0, 0, 0) and not totals.by_model


def test_a_fake_worker_transcript_is_found_and_summed(
    fake_claude, hermetic_env: dict, project: Path
) -> None:
    """The fake claude writes its transcript like the CLI (independently of our code)."""
    fake_claude.script([[{"do": "run", "cmd": "true"}, {"do": "run", "cmd": "true"}, "done"]])
    proc = subprocess.run(
        ["claude", "-p", "go", "--output-format", "stream-json", "--verbose",
         "--allowed-tools", "Bash"],
        cwd=project, env=hermetic_env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    import json

    result = json.loads(proc.stdout.strip().splitlines()[-1])
    path = find_transcript(hermetic_env, project, result["session_id"])
    assert path is not None and path.is_file()
    totals = transcript_usage(path)
    assert list(totals.by_model) == ["claude-opus-4-8"]
    inp, _out, _cwrite, cread = totals.totals()
    assert inp > 0 and cread > 0
    # Every assistant line the fake wrote was counted once per distinct message id.
    ids = {
        json.loads(line)["message"]["id"]
        for line in path.read_text().splitlines()
        if json.loads(line).get("type") == "assistant"
    }
    assert transcript_usage(path).messages == len(ids)


def test_the_last_line_of_a_message_counts_and_1h_writes_cost_double(tmp_path: Path) -> None:
    """CLI 1.0.98 to 2.1.39 wrote partial output_tokens on a message's earlier lines."""
    import json

    def line(out: int, stamp: str, one_hour: int = 0) -> str:
        usage = {"input_tokens": 10, "output_tokens": out, "cache_creation_input_tokens": 1000,
                 "cache_read_input_tokens": 0,
                 "cache_creation": {"ephemeral_1h_input_tokens": one_hour,
                                    "ephemeral_5m_input_tokens": 1000 - one_hour}}  # fmt: skip
        return json.dumps({"type": "assistant", "timestamp": stamp, "requestId": "req_1",
                           "message": {"id": "msg_1", "model": "claude-opus-4-6",
                                       "usage": usage}})  # fmt: skip

    path = tmp_path / "t.jsonl"
    path.write_text(
        line(6, "2026-12-01T10:00:00.100Z", 1000)
        + "\n"
        + line(148, "2026-12-01T10:00:00.900Z", 1000)
    )
    totals = transcript_usage(path)
    assert totals.totals() == (10, 148, 1000, 0)
    assert totals.cost_priced == pytest.approx(
        price_usage("claude-opus-4-6", 10, 148, 1000, 0, 1000)
    )
    assert totals.cost_priced == pytest.approx((10 * 5 + 148 * 25 + 1000 * 10) / 1e6)


def test_only_lines_since_the_worker_started_count(tmp_path: Path) -> None:
    """A resumed session's transcript holds the earlier iterations' messages too."""
    from datetime import UTC, datetime

    t = Transcript(tmp_path / "s.jsonl").user().assistant("m1", input_tokens=100)
    t.assistant("m2", input_tokens=7)
    path = t.write()
    lines = path.read_text().splitlines()
    stamps = [__import__("json").loads(x)["timestamp"] for x in lines]
    cut = datetime.fromisoformat(stamps[-1].replace("Z", "+00:00"))
    assert transcript_usage(path).totals()[0] == 107
    assert transcript_usage(path, since=cut).totals()[0] == 7
    assert transcript_usage(path, since=datetime(2000, 1, 1, tzinfo=UTC)).totals()[0] == 107
