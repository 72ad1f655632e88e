"""Reading the user's prompt: a FIFO or a device never blocks the daemon, and what cannot be a
prompt is refused with one line naming the file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from unattended.supervisor.run.prompt import (
    MAX_PROMPT_BYTES,
    PromptError,
    PromptSource,
    read_prompt,
)


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


def test_a_regular_prompt_is_read(tmp_path: Path) -> None:
    path = tmp_path / "PROMPT.md"
    path.write_bytes("Fix it ✓\n".encode())
    assert read_within(PromptSource(None, path)) == "Fix it ✓\n"
    with pytest.raises(PromptError, match="cannot read"):
        read_prompt(PromptSource(None, tmp_path / "missing.md"))


def test_a_prompt_larger_than_any_context_is_refused_as_too_long(tmp_path: Path) -> None:
    big = tmp_path / "PROMPT.md"
    big.write_text("x" * (MAX_PROMPT_BYTES + 1))
    with pytest.raises(PromptError, match=r"^prompt too long: .*PROMPT.md is 4.0 MiB"):
        read_prompt(PromptSource(None, big))
    fits = tmp_path / "fits.md"
    fits.write_text("y" * (200 * 1024))
    assert len(read_prompt(PromptSource(None, fits))) == 200 * 1024


def test_a_binary_prompt_is_refused_in_one_line(tmp_path: Path) -> None:
    png = tmp_path / "PROMPT.md"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(PromptError, match=r"PROMPT.md is not UTF-8 text \(byte 0\)"):
        read_prompt(PromptSource(None, png))
    nul = tmp_path / "nul.md"
    nul.write_bytes(b"text\0more")
    with pytest.raises(PromptError, match="contains NUL bytes"):
        read_prompt(PromptSource(None, nul))
