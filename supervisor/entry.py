"""The ``unattended`` console entry point.

The context-meter hook runs after every tool call of every worker, so it is dispatched here
before the CLI framework (typer, pydantic: 60-200 ms of imports) is loaded.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:2] == ["hook", "context-meter"]:
        from supervisor.hook_fast import run_hook

        return run_hook(args[2:])
    from supervisor.cli import run_cli

    return run_cli(args)


if __name__ == "__main__":
    raise SystemExit(main())
