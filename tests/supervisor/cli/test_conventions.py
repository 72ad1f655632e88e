"""CLI conventions: --version, help that shows every default, the exit-code epilog, and shell
completion that sees every (lazily loaded) command. Real processes of `python -m unattended`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from unattended import __version__
from unattended.contracts.exit_codes import EXIT_CODE_MEANINGS
from unattended.contracts.settings import Settings
from unattended.supervisor.cli.app import COMMANDS


def cli(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unattended", *args],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag(hermetic_env: dict[str, str], flag: str) -> None:
    proc = cli(hermetic_env, flag)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"unattended {__version__}\n", "")


def test_version_is_listed_in_root_help(hermetic_env: dict[str, str]) -> None:
    assert "-V, --version" in cli(hermetic_env, "--help").stdout


def _option_help(text: str) -> dict[str, str]:
    """--option -> its help text (continuation lines joined)."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"\s+(?:-\w, )?(--[\w-]+)(?: <\w+>)?\s+(.*)", line)
        if m:
            current = m.group(1)
            out[current] = m.group(2)
        elif current and line.startswith(" " * 10):
            out[current] += " " + line.strip()
    return out


def test_start_help_shows_every_default(hermetic_env: dict[str, str]) -> None:
    proc = cli(hermetic_env, "start", "--help", COLUMNS="100")
    options = _option_help(proc.stdout)
    settings_options = [
        o for o in options if o.removeprefix("--").replace("-", "_") in Settings.model_fields
    ]
    assert len(settings_options) >= 20
    for option in settings_options:
        assert "[default: " in options[option], (option, options[option])
    for name in ("hours", "max_iterations", "worker_timeout", "stall_timeout", "grace_seconds"):
        default = Settings.model_fields[name].default
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert f"[default: {shown}]" in options["--" + name.replace("_", "-")]
    assert "[default: bypassPermissions" in options["--permission-mode"]
    assert "[default: wait]" in options["--on-limit"]
    assert "[default: transcript]" in options["--context-source"]


@pytest.mark.parametrize("command", [c[2] for c in COMMANDS])
def test_flags_have_no_value_placeholder(hermetic_env: dict[str, str], command: str) -> None:
    proc = cli(hermetic_env, command, "--help")
    assert proc.returncode == 0
    assert "<bool>" not in proc.stdout
    assert "╭" not in proc.stdout  # plain help, no rich boxes


def test_root_help_lists_the_exit_codes(hermetic_env: dict[str, str]) -> None:
    text = cli(hermetic_env, "--help", COLUMNS="120").stdout
    for code, meaning in EXIT_CODE_MEANINGS.items():
        assert re.search(rf"^\s+{int(code)}  {re.escape(meaning)}$", text, re.M), meaning


def test_readme_documents_completion_and_exit_codes() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert "unattended --install-completion" in readme
    for code in EXIT_CODE_MEANINGS:
        assert f"| {int(code)} |" in readme


def _complete(env: dict[str, str], shell: str, words: str) -> str:
    if shell == "bash":
        extra = {"COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    else:
        extra = {"_TYPER_COMPLETE_ARGS": words}
        if shell == "fish":
            extra["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    proc = cli(env, _UNATTENDED_COMPLETE=f"complete_{shell}", **extra)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_sees_every_command(hermetic_env: dict[str, str], shell: str) -> None:
    out = _complete(hermetic_env, shell, "unattended ")
    for _module, _attr, name, _kind in COMMANDS:
        assert re.search(rf"(^|[\s\"']){name}([\s\"':]|$)", out), (name, out)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_of_a_lazy_subcommand(hermetic_env: dict[str, str], shell: str) -> None:
    out = _complete(hermetic_env, shell, "unattended budget ")
    assert "reserve" in out and "record" in out
    assert "--now" in _complete(hermetic_env, shell, "unattended stop --")


def test_completion_script_is_typers(hermetic_env: dict[str, str]) -> None:
    proc = cli(hermetic_env, "--show-completion", "bash")
    assert proc.returncode == 0
    assert "_UNATTENDED_COMPLETE=complete_bash" in proc.stdout


def test_version_in_state_status_and_doctor(project: Path, hermetic_env: dict[str, str]) -> None:
    import json

    from tests.conftest import read_state, run_cli

    none = json.loads(run_cli(["status", "--json"], hermetic_env, cwd=project).stdout)
    assert none["cli_version"] == __version__
    fake = run_cli(["start", "--foreground", "--allowed-tools", "Bash", "--max-iterations", "1"],
                   hermetic_env, cwd=project)  # fmt: skip
    assert fake.returncode in (0, 3), fake.stderr
    assert read_state(project)["unattended_version"] == __version__
    status = json.loads(run_cli(["status", "--json"], hermetic_env, cwd=project).stdout)
    assert (status["unattended_version"], status["cli_version"]) == (__version__, __version__)
    doctor = run_cli(["doctor", "--json"], hermetic_env, cwd=project)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["version"]["message"].startswith(f"unattended {__version__} (Python ")
