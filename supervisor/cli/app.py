"""The root of the ``unattended`` command line (typer): it composes the commands, each of which
lives in its own module and is imported only when asked for (start-up time is the budget).
Nothing imports this module but ``entry``."""

from __future__ import annotations

import importlib
import os
from typing import Annotated

import typer

from unattended import __version__
from unattended.contracts.exit_codes import EXIT_CODE_MEANINGS


def _exit_code_epilog() -> str:
    # \b keeps click from re-wrapping the table into one paragraph.
    rows = "\n".join(f"  {int(code)}  {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items())
    return f"Exit codes of the daemon and `start --foreground`:\n\n\b\n{rows}"


app = typer.Typer(
    name="unattended",
    help="Keep a Claude Code worker busy on a git repository for hours, and stop it safely.",
    epilog=_exit_code_epilog(),
    no_args_is_help=True,
    # typer's own `--install-completion` / `--show-completion` for bash, zsh and fish.
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain click help: rich markup deleted every `[default: ...]` and cost ~half the time.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"unattended {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """A group even when only the command asked for is registered (typer would otherwise run
    a lone command as the whole program)."""


_CLI = "unattended.supervisor.cli"

# (module, attribute, name, kind), in the order `--help` lists them. Each module keeps its
# top-level imports light (typer and `common` only) so registering them all costs little.
COMMANDS: tuple[tuple[str, str, str, str], ...] = (
    (f"{_CLI}.start", "start", "start", "command"),
    (f"{_CLI}.status", "status", "status", "command"),
    (f"{_CLI}.stop", "stop", "stop", "command"),
    (f"{_CLI}.logs", "logs", "logs", "command"),
    (f"{_CLI}.demo", "demo", "demo", "command"),
    (f"{_CLI}.recover", "recover", "recover", "command"),
    (f"{_CLI}.service", "service_app", "service", "group"),
    (f"{_CLI}.budget", "budget_app", "budget", "group"),
    (f"{_CLI}.step", "step", "step", "command"),
    (f"{_CLI}.ps", "ps", "ps", "command"),
    (f"{_CLI}.extend", "extend", "extend", "command"),
    (f"{_CLI}.watch", "watch", "watch", "command"),
    (f"{_CLI}.metrics", "metrics", "metrics", "command"),
    (f"{_CLI}.report", "report", "report", "command"),
    (f"{_CLI}.doctor", "doctor", "doctor", "command"),
    (f"{_CLI}.advise", "advise", "advise", "command"),
    (f"{_CLI}.kube", "kube_app", "kube", "group"),
)


def _register_commands(args: list[str]) -> None:
    """When the first argument names a command, only that one is imported; for help, typos
    and no arguments, all of them."""
    first = args[0] if args else None
    if os.environ.get("_UNATTENDED_COMPLETE"):
        first = None  # completing: every command must be visible, whatever was typed
    wanted = [entry for entry in COMMANDS if entry[2] == first] or list(COMMANDS)
    for module_name, attr, name, kind in wanted:
        target = getattr(importlib.import_module(module_name), attr)
        if kind == "group":
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


def run_cli(args: list[str]) -> int:
    _register_commands(args)
    try:
        app(args=args, prog_name="unattended", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
