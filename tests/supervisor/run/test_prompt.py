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
