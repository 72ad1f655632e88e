"""Reading the user's prompt: what cannot be a prompt is refused with one line naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from unattended.supervisor.run.prompt import (
    MAX_PROMPT_BYTES,
    PromptError,
    PromptSource,
    read_prompt,
)


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
