"""The ``unattended`` console entry point.

The context-meter hook runs after every tool call of every worker, so it is dispatched here
before the CLI framework (typer, pydantic: 60-200 ms of imports) is loaded.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    try:
        code = _dispatch(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # `unattended status | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
    if argv is None:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """As a command, skip the interpreter's teardown (~50 ms of freeing pydantic and typer):
    everything we write goes through os.write or closed files; only stdio needs a flush."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe or a terminal gone (EIO)
        pass
    os._exit(code)


def without_pydantic_plugins() -> None:
    """We use no pydantic plugin. PYDANTIC_DISABLE_PLUGINS says so (set before any import of
    pydantic; worker_env() keeps it out of the workers' environment), but pydantic's plugin
    loader imports importlib.metadata (~20 ms of every start) before it reads the variable.
    In its place, a loader that finds none: the same answer at once. Asked for anything
    else, it hands over to the real loader, so a pydantic that changed still works."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] not in ("__all__", "1", "true"):
        return
    import types

    name = "pydantic.plugin._loader"
    stub = types.ModuleType(name)

    def get_plugins() -> tuple[()]:
        return ()

    def real(attr: str) -> object:
        if attr.startswith("__"):  # the import machinery asking (`__path__`, ...)
            raise AttributeError(attr)
        if sys.modules.get(name) is stub:
            del sys.modules[name]
        import importlib

        return getattr(importlib.import_module(name), attr)

    stub.get_plugins = get_plugins  # type: ignore[attr-defined]
    stub.__getattr__ = real  # type: ignore[method-assign]
    sys.modules.setdefault(name, stub)


def _dispatch(args: list[str]) -> int:
    if args[:2] == ["hook", "context-meter"]:
        from unattended.supervisor.hook.meter import run_hook

        return run_hook(args[2:])
    if args in (["--version"], ["-V"]):
        from unattended import __version__

        sys.stdout.write(f"unattended {__version__}\n")
        return 0
    without_pydantic_plugins()
    if args[:1] == ["status"]:
        fast = _status_fast_path(args[1:])
        if fast is not None:
            return fast
    if args[:1] == ["start"]:
        fast = _start_fast_path(args[1:])
        if fast is not None:
            return fast
    from unattended.supervisor.cli.app import run_cli

    return run_cli(args)


def _status_fast_path(args: list[str]) -> int | None:
    """`status [--project DIR] [--json]` without the CLI framework (typer alone costs ~50 ms of
    imports); anything else (help, typos) returns None and goes through typer as usual."""
    from pathlib import Path

    project, json_out, rest = None, False, list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--json" and not json_out:
            json_out = True
        elif arg == "--project" and rest and project is None:
            project = rest.pop(0)
        elif arg.startswith("--project=") and project is None:
            project = arg.removeprefix("--project=")
        else:
            return None
    path = Path(project or ".").expanduser()
    if not path.is_dir():
        return None  # typer's path gives the usual one-line error
    from unattended.supervisor.git.top import project_top
    from unattended.supervisor.views.status import show_status

    return show_status(project_top(path), json_out)


def _start_fast_path(args: list[str]) -> int | None:
    """`start` with well-formed options, without typer (its imports are a quarter of what
    `start` costs); help, typos and bad values return None and go through typer as usual."""
    from unattended.supervisor.cli.start_args import parse_start_args

    parsed = parse_start_args(args)
    if parsed is None:
        return None
    invocation, values = parsed
    from unattended.supervisor.cli.start_run import StartOptions, run_start

    try:
        return run_start(StartOptions(**invocation), values)  # type: ignore[arg-type]
    except SystemExit as exc:  # fail(): its line is on stderr already
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:  # as typer does: no traceback for a Ctrl-C
        sys.stderr.write("\nAborted!\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
