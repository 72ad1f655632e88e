"""Reading the prompt file: a FIFO or a device never blocks the daemon."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from unattended.supervisor.run.prompt import PromptError, PromptSource, read_prompt


def read_within(source: PromptSource, seconds: float = 5.0) -> object:
    """read_prompt in a thread: what it returned or raised, or 'blocked' past ``seconds``."""
    box: list[object] = []

    def target() -> None:
        try:
            box.append(read_prompt(source))
        except Exception as exc:  # noqa: BLE001 - handed to the test
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return box[0] if box else "blocked"


def test_a_fifo_prompt_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "PROMPT.md"
    os.mkfifo(fifo)
    got = read_within(PromptSource(None, fifo))
    if got == "blocked":  # free the reader thread before failing
        with open(fifo, "w"):
            pass
    assert isinstance(got, PromptError) and "not a regular file" in str(got)


def test_a_regular_prompt_is_read_and_bad_bytes_do_not_raise(tmp_path: Path) -> None:
    path = tmp_path / "PROMPT.md"
    path.write_bytes(b"Fix it \xff\n")
    assert read_within(PromptSource(None, path)) == "Fix it \ufffd\n"
    with pytest.raises(PromptError, match="cannot read"):
        read_prompt(PromptSource(None, tmp_path / "missing.md"))
