"""``unattended logs``: print or follow run.log, across rotation (as ``tail -F``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from unattended.contracts.paths import RunPaths
from unattended.supervisor.cli.common import ProjectOpt, project_dir
from unattended.supervisor.views.status import echo


def show_logs(project: Path, follow: bool, lines: int, json_out: bool = False) -> int:
    """run.log for people; with ``json_out`` its machine twin events.jsonl, one JSON object a
    line and nothing else on stdout. The project used is named on stderr."""
    paths = RunPaths(project)
    path = paths.events if json_out else paths.run_log
    if not path.exists() and not follow:
        echo(f"unattended: no {path.name} yet in {path.parent}", err=True)
        return 0
    echo(f"unattended: {path.name} of {project}", err=True)
    if path.exists():
        for line in _tail(path, lines):
            echo(line)
    if follow:
        try:
            _follow(path)
        except KeyboardInterrupt:
            return 0
    return 0


def _tail(path: Path, count: int) -> list[str]:
    from collections import deque

    with path.open("r", errors="replace") as fh:
        return [line.rstrip("\n") for line in deque(fh, maxlen=max(count, 0))]


def follow_file(path: Path, keep_going=lambda: True, from_end: bool = True):  # noqa: ANN001, ANN201
    """Yield lines appended to ``path``, reopening it when it is moved or recreated and reading
    it again from the start when it is truncated in place (logrotate's copytruncate), as
    ``tail -F`` does."""
    fh = None
    ino = None
    pending = ""
    while keep_going():
        if fh is None:
            try:
                fh = path.open("r", errors="replace")
                ino = os.fstat(fh.fileno()).st_ino
                if from_end:
                    fh.seek(0, os.SEEK_END)
                from_end = False
            except FileNotFoundError:
                time.sleep(0.2)
                continue
        chunk = fh.read()
        if chunk:
            pending += chunk
            *complete, pending = pending.split("\n")
            yield from complete
            continue
        try:
            now = os.stat(path)
            if now.st_ino != ino:
                fh.close()
                fh, from_end = None, False
                continue
            if now.st_size < fh.tell():  # truncated in place: what is there now is new
                fh.seek(0)
                pending = ""
                continue
        except FileNotFoundError:
            fh.close()
            fh, from_end = None, False
            continue
        time.sleep(0.2)
    if fh is not None:  # the last words written before keep_going() turned false
        pending += fh.read()
        fh.close()
    yield from (line for line in pending.split("\n") if line)


def _follow(path: Path) -> None:
    for line in follow_file(path):
        echo(line)


def logs(
    project: ProjectOpt = None,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[int, typer.Option("-n", "--lines", help="Lines to show.")] = 20,
    json_out: Annotated[
        bool, typer.Option("--json", help="The same events as JSON lines (events.jsonl).")
    ] = False,
) -> None:
    """Print run.log (like tail; -f follows it across rotation and truncation)."""
    raise typer.Exit(show_logs(project_dir(project), follow, lines, json_out))
