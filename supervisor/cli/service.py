"""`unattended service install|uninstall`: run the daemon as a systemd user unit or launchd agent.

Only option parsing lives here; `platform_adapters.service` does the work (imported lazily, so
`unattended --help` stays fast). Registered in the main app as
`app.add_typer(service_app, name="service")`.
"""

from __future__ import annotations

from typing import Annotated

import typer

service_app = typer.Typer(
    help="Run the daemon as a service: a systemd user unit (Linux) or a launchd agent (macOS).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

ProjectOpt = Annotated[
    str | None,
    typer.Option("--project", help="Project directory (default: the current directory)."),
]
SystemdOpt = Annotated[bool, typer.Option("--systemd", help="Use a systemd user unit.")]
LaunchdOpt = Annotated[bool, typer.Option("--launchd", help="Use a launchd agent (macOS).")]


def _say(text: str) -> None:
    typer.echo(text)


def _warn(text: str) -> None:
    typer.echo(text, err=True)


def _run(action: str, json_out: bool = False, **kwargs: object) -> None:
    """Run the service action; with ``json_out`` its lines become one JSON document on stdout
    (``unit``: what ``--print`` writes; ``messages``/``notes``: its stdout/stderr lines)."""
    from unattended.platform_adapters import service
    from unattended.supervisor.cli.common import fail

    out: list[str] = []
    err: list[str] = []
    host = service.make_host(out.append, err.append) if json_out else service.make_host(_say, _warn)
    try:
        code = getattr(service, action)(host, **kwargs)
    except service.ServiceError as exc:
        fail(str(exc), 2)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{where}", 1)
    if json_out:
        import json

        doc: dict[str, object] = {"action": action, "exit_code": code}
        if kwargs.get("print_only"):
            doc["unit"] = "\n".join(out) + "\n"
            doc["instructions"] = [line.removeprefix("# ") for line in err]
        else:
            doc.update(messages=out, notes=err)
        typer.echo(json.dumps(doc))
    raise typer.Exit(code)


@service_app.command()
def install(
    project: ProjectOpt = None,
    systemd: SystemdOpt = False,
    launchd: LaunchdOpt = False,
    print_only: Annotated[
        bool,
        typer.Option(
            "--print", help="Write the unit to stdout, instructions to stderr; no install."
        ),
    ] = False,
    no_start: Annotated[
        bool, typer.Option("--no-start", help="Write the unit but do not start it now.")
    ] = False,
    enable: Annotated[
        bool,
        typer.Option(
            "--enable",
            help="Also start at every login/boot (each such start begins a new run once the "
            "last one has ended).",
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON document (with --print: the unit in it).")
    ] = False,
) -> None:
    """Write the service unit for a project and start it once
    (`start --foreground --resume-or-start`)."""
    _run(
        "install",
        json_out=json_out,
        project=project,
        systemd=systemd,
        launchd=launchd,
        print_only=print_only,
        start=not no_start,
        enable=enable,
    )


@service_app.command()
def uninstall(
    project: ProjectOpt = None,
    systemd: SystemdOpt = False,
    launchd: LaunchdOpt = False,
) -> None:
    """Stop the project's service instance and remove what `install` wrote for it."""
    _run("uninstall", project=project, systemd=systemd, launchd=launchd)
