"""Issue 13 §3: the prompt reaches the worker on its stdin, whatever its size, and never on its
command line (readable by every local user in /proc/<pid>/cmdline; argv strings cap at 128 KiB)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.daemon.scenario import foreground, prompts


def test_a_200_kib_prompt_runs_and_arrives_whole_on_stdin(
    project: Path, hermetic_env: dict[str, str], fake_claude
) -> None:
    line = "- requirement {0}: keep the behaviour of module {0} intact\n"
    body = "".join(line.format(i) for i in range(4000))
    text = body[: 200 * 1024] + "END-OF-SPEC\n"
    (project / "PROMPT.md").write_text(text)
    fake_claude.script([["commit", "done"]])
    proc = foreground(project, hermetic_env, "--allow-dirty")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    call = fake_claude.calls()[0]
    assert call["stdin"] == "file"
    assert text.rstrip() in prompts(fake_claude)[0] and "UNATTENDED_DONE" in call["prompt"]
    assert not any("END-OF-SPEC" in arg or "requirement 1:" in arg for arg in call["argv"])
    assert not list((project / ".unattended" / "iterations").glob(".*.prompt"))
