"""`unattended recover`: list work-tree snapshots and restore one onto a new branch.

Register with `app.command("recover")(recover)`. Only typer is imported at module level;
the git work happens in supervisor.snapshots, imported when the command runs.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer

EXIT_USAGE = 2


def recover(
    project: Annotated[
        Path | None,
        typer.Option(
            "--project", metavar="DIR", help="Project directory (default: current directory)."
        ),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List snapshots, newest first (the default).")
    ] = False,
    restore: Annotated[
        str | None,
        typer.Option("--restore", metavar="REF", help="Snapshot to restore, e.g. RUN/0003-before."),
    ] = None,
    to_branch: Annotated[
        str | None,
        typer.Option("--to-branch", metavar="NAME", help="New branch to create (not checked out)."),
    ] = None,
    with_ignored: Annotated[
        bool,
        typer.Option(
            "--with-ignored",
            help="Also write the ignored files the snapshot held (e.g. .env) into the work "
            "tree; existing files are never overwritten.",
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="With --list: the snapshots as one JSON document.")
    ] = False,
) -> None:
    """List work-tree snapshots, or restore one onto a new branch."""
    from unattended.supervisor.git.facts import GitError

    root = Path.cwd() if project is None else project
    try:
        if restore is None:
            if to_branch is not None or with_ignored:
                _fail("--to-branch and --with-ignored need --restore REF")
            _print_list(root, json_out)
            return
        if list_:
            _fail("--list and --restore cannot be combined")
        if json_out:
            _fail("--json goes with --list")
        if not to_branch:
            _fail("--restore needs --to-branch NAME (the snapshot goes onto a new branch)")
        _restore(root, restore, to_branch, with_ignored)
    except (GitError, OSError) as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _print_list(project: Path, json_out: bool = False) -> None:
    from unattended.supervisor.git.facts import locate_repo
    from unattended.supervisor.git.snapshots import list_snapshots

    top = locate_repo(project)[0]
    snaps = list_snapshots(top, with_subject=False)
    if json_out:
        import json

        rows = [
            {
                "ref": s.short_ref,
                "date": s.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "commit": s.commit,
            }
            for s in snaps
        ]
        typer.echo(json.dumps({"project": str(top), "snapshots": rows}))
        return
    if not snaps:
        typer.echo(f"no snapshots in {top}")
        return
    rows = [
        (s.short_ref, s.date.astimezone().strftime("%Y-%m-%d %H:%M:%S"), s.commit[:12])
        for s in snaps
    ]
    width = max(len("REF"), *(len(r[0]) for r in rows))
    lines = [f"{'REF':<{width}}  {'DATE':<19}  COMMIT"]
    lines += [f"{ref:<{width}}  {date:<19}  {commit}" for ref, date, commit in rows]
    lines.append("\nrestore one with: unattended recover --restore REF --to-branch NAME")
    typer.echo("\n".join(lines))  # one write: a 10,000-iteration run lists 20,000 lines


def _restore(project: Path, ref: str, branch: str, with_ignored: bool) -> None:
    from unattended.supervisor.git.restore import restore_snapshot

    result = restore_snapshot(project, ref, branch, with_ignored=with_ignored)
    short = result.ref.removeprefix("refs/unattended/")
    typer.echo(f"restored {short} onto new branch '{branch}' (commit {result.commit[:12]})")
    if result.written:
        typer.echo(f"wrote back {len(result.written)} ignored file(s): {', '.join(result.written)}")
    for path, why in result.skipped:
        typer.echo(f"skipped {path}: {why}")
    if result.held_back:
        typer.echo(
            f"held back {len(result.held_back)} ignored file(s) (add --with-ignored to write "
            f"them into the work tree): {', '.join(result.held_back)}"
        )
    typer.echo(f"switch to it with: git switch {branch}")
