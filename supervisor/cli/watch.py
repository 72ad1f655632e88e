"""``unattended watch``: a live view of one run, refreshed from its files twice a second.

``q`` or Ctrl-C quits and gives the terminal back as it was (cbreak mode undone, alternate
screen left). When stdout is not a terminal it prints one plain snapshot and exits 0.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from unattended.supervisor.cli.common import ProjectOpt, project_dir

REFRESH_S = 0.5
QUIT_KEYS = (b"q", b"Q", b"\x03", b"\x1b")


def watch(
    project: ProjectOpt = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between refreshes (at most 1).")
    ] = REFRESH_S,
) -> None:
    """Watch a run live: status, iteration, worker, context, cost, commits, run.log (q quits)."""
    from unattended.supervisor.views.watch import snapshot_text, terminal_width

    root = project_dir(project)
    if not sys.stdout.isatty():
        typer.echo(snapshot_text(root, width=terminal_width()))
        return
    interval = min(max(interval, 0.1), 1.0)
    _quit_on_signals()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C quits like q
        _live(root, interval)


def _quit_on_signals() -> None:
    """SIGTERM and SIGHUP quit like Ctrl-C, so the terminal mode is restored on the way out."""
    import signal

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


@contextlib.contextmanager
def _cbreak() -> Iterator[int | None]:
    """Keys arrive one at a time without echo; the old terminal mode comes back whatever
    happens. Yields stdin's fd, or None when stdin is not a terminal (Ctrl-C still quits)."""
    if not sys.stdin.isatty():
        yield None
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _quit_pressed(fd: int | None, timeout: float) -> bool:
    """Wait up to ``timeout`` for a key; True when it says quit."""
    if fd is None:
        import time

        time.sleep(timeout)
        return False
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return False
    data = os.read(fd, 64)
    return not data or any(key in data for key in QUIT_KEYS)


def _live(root: Path, interval: float) -> None:
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    from unattended.supervisor.views.watch import WatchSource, build_lines

    console = Console()
    source = WatchSource(root)
    footer = f"q quits · refreshed every {interval:g} s from {root.name}/.unattended/"

    def screen() -> Group:
        width = max(20, console.size.width)
        lines = build_lines(source, width=width)[: max(1, console.size.height - 2)]
        texts = [Text(ln.text, style=ln.style, no_wrap=True, overflow="ellipsis") for ln in lines]
        texts.append(Text(""))
        texts.append(Text(footer[: width - 1], style="dim", no_wrap=True, overflow="ellipsis"))
        return Group(*texts)

    with _cbreak() as fd, Live(screen(), console=console, screen=True, auto_refresh=False) as live:
        while True:
            if _quit_pressed(fd, interval):
                return
            live.update(screen(), refresh=True)
