"""What each worker is told: the user's prompt, the reporting protocol, and what came before.

The prompt file is re-read for every fresh worker, so a person can steer a run overnight by
editing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unattended.contracts.names import BLOCKED_MARKER, DONE_MARKER
from unattended.contracts.settings import Settings

PROTOCOL = f"""

---
## How to report (you are running unattended; nobody will answer questions)
You are one of a series of fresh workers on this task, supervised by `unattended`. Work in small
steps and commit each step with git: progress is judged only by what git shows.
- When the WHOLE task is complete, end your final message with a line of its own:
  {DONE_MARKER}
- When you cannot go on without a human (a decision, a credential, an access), end your final
  message with a line of its own:
  {BLOCKED_MARKER}: <one-sentence reason>
- Otherwise just stop when you have made a solid step; another worker will continue.
Do not ask questions: decide, note the decision in the commit message, and go on.
Token budget: before a large step run `unattended budget check`; if it fails, do not start the
step: commit and stop. After each finished step run
`unattended step --complete N --desc "<what it did>"` (it reads your tokens itself).
"""

CONTINUATION = (
    "Continue the same task from where you left off. Commit each step. Follow the reporting "
    "protocol from the first message (a line UNATTENDED_DONE when everything is complete, "
    "UNATTENDED_BLOCKED: <reason> when you need a human)."
)


# The prompt reaches the worker on its stdin, so no argv limit applies; what remains is the
# model's context window (1M tokens at most, about 4 MiB of text). Past this size a prompt can
# only fail, every iteration, with the CLI's "Prompt is too long".
MAX_PROMPT_BYTES = 4 * 1024 * 1024


class PromptError(Exception):
    pass


@dataclass(frozen=True)
class PromptSource:
    text: str | None
    file: Path | None

    def describe(self) -> str:
        return str(self.file) if self.file else "--prompt"


def prompt_source(project: Path, settings: Settings) -> PromptSource | None:
    """Where the prompt comes from: --prompt, --prompt-file, else PROMPT.md; None if nowhere."""
    if settings.prompt is not None:
        return PromptSource(settings.prompt, None)
    if settings.prompt_file is not None:
        path = Path(settings.prompt_file).expanduser()
        return PromptSource(None, path if path.is_absolute() else project / path)
    default = project / "PROMPT.md"
    return PromptSource(None, default) if default.is_file() else None


def read_prompt(source: PromptSource) -> str:
    if source.text is not None:
        text = source.text
    else:
        assert source.file is not None
        data = _read_regular_file(source.file)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PromptError(
                f"the prompt file {source.file} is not UTF-8 text (byte {exc.start}): "
                "is it a binary file? Give a text file, or pass --prompt TEXT"
            ) from None
    if not text.strip():
        raise PromptError(f"the prompt ({source.describe()}) is empty")
    if "\0" in text:
        raise PromptError(
            f"the prompt ({source.describe()}) contains NUL bytes: is it a binary file? Give "
            "a text file, or pass --prompt TEXT"
        )
    size = len(text.encode("utf-8", "surrogateescape"))
    if size > MAX_PROMPT_BYTES:
        raise PromptError(
            f"prompt too long: {source.describe()} is {size / 2**20:.1f} MiB, over the "
            f"{MAX_PROMPT_BYTES // 2**20} MiB any model's context can hold; shorten it"
        )
    return text


def _read_regular_file(path: Path) -> bytes:
    """Opened non-blocking and refused unless a regular file: a worker that turns PROMPT.md
    into a FIFO (or a device) must not block the daemon on the next read."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise PromptError(f"cannot read prompt file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PromptError(f"prompt file {path} is not a regular file")
            data = handle.read()
        except OSError as exc:
            raise PromptError(f"cannot read prompt file {path}: {exc.strerror}") from None
    return data


def build_prompt(user_prompt: str, handoff: str | None = None, diagnosis: str | None = None) -> str:
    parts = [user_prompt.rstrip(), PROTOCOL]
    if handoff:
        parts.append(
            "\n## Handoff notes from the previous worker (its context filled up)\n"
            + handoff.strip()
        )
    if diagnosis:
        parts.append("\n## Note from the supervisor about the previous attempts\n" + diagnosis)
    return "\n".join(parts) + "\n"


def build_continuation(diagnosis: str | None = None) -> str:
    if diagnosis:
        return CONTINUATION + "\n\nNote from the supervisor: " + diagnosis
    return CONTINUATION
