"""``unattended kube job|ps``: one run = one Kubernetes Job; list them like ``ps``.

``kube job`` takes every ``start`` option (its signature is built from ``start``'s, so the two
cannot drift apart) plus where and how to run, and prints the manifests; nothing is applied.
``kube ps`` reads ``kubectl get jobs,pods -o json`` with the user's kubeconfig and context.
"""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from unattended.supervisor.cli.common import fail

kube_app = typer.Typer(
    help="Run on Kubernetes: one run = one Job (see docs/kubernetes.md).",
    no_args_is_help=True,
    add_completion=False,
)

KUBECTL_TIMEOUT_S = 30.0
# `start` options that are about this machine's invocation, not the run in the pod.
NOT_FOR_THE_POD = (
    "project", "foreground", "dry_run", "resume", "resume_or_start", "json_out", "run_id"
)  # fmt: skip


def _kube_parameters() -> list[inspect.Parameter]:
    def opt(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )

    text = str | None
    return [
        opt("repo", Annotated[text, typer.Option(help="Repository URL the pod clones.")]),
        opt(
            "image", Annotated[text, typer.Option(help="The unattended image (see Containerfile).")]
        ),
        opt(
            "secret",
            Annotated[
                text,
                typer.Option(
                    help="Secret with ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN, "
                    "and the git / forge credentials."
                ),
            ],
        ),
        opt("namespace", Annotated[text, typer.Option(help="Namespace of the Job.")]),
        opt(
            "storage",
            Annotated[
                text,
                typer.Option(
                    help="PersistentVolumeClaim size (e.g. 10Gi): a retried pod "
                    "resumes the run instead of starting over."
                ),
            ],
        ),
        opt("cpu", Annotated[text, typer.Option(help="CPU request (e.g. 1, 500m).")]),
        opt("memory", Annotated[text, typer.Option(help="Memory request and limit (e.g. 4Gi).")]),
        opt("name", Annotated[text, typer.Option(help="Job name (default: generated).")]),
        opt(
            "metrics_hostpath",
            Annotated[
                text,
                typer.Option(
                    help="Node directory of node_exporter's textfile collector: the "
                    "pod writes <job>.prom there."
                ),
            ],
        ),
        opt(
            "backoff_limit",
            Annotated[int, typer.Option(help="Retries after exit 1 or a disruption.")],
            3,
        ),
        opt(
            "ttl_seconds",
            Annotated[int, typer.Option(help="Seconds to keep the finished Job (7 days).")],
            7 * 24 * 3600,
        ),
    ]


def _start_parameters() -> list[inspect.Parameter]:
    from unattended.supervisor.cli.start import start

    params = inspect.signature(start, eval_str=True).parameters.values()
    return [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in params
        if p.name not in NOT_FOR_THE_POD
    ]


KUBE_PARAMS = _kube_parameters()
START_PARAMS = _start_parameters()


def _start_args(values: dict[str, Any]) -> list[str]:
    """The given ``start`` options as they would be typed (``--branch`` is added by the caller)."""
    args: list[str] = []
    for param in START_PARAMS:
        value = values.get(param.name)
        if value is None or param.name == "branch":
            continue
        flag = "--" + param.name.replace("_", "-")
        if isinstance(value, bool):
            if value:
                args.append(flag)
        else:
            args += [flag, str(value)]
    return args


def _metrics_args(values: dict[str, Any], name: str) -> list[str]:
    if not values["metrics_hostpath"]:
        return []
    if values.get("metrics_textfile"):
        fail("give --metrics-hostpath or --metrics-textfile, not both")
    from unattended.supervisor.views.kube_manifest import METRICS_MOUNT

    return ["--metrics-textfile", f"{METRICS_MOUNT}/{name}.prom"]


def job(**values: Any) -> None:
    """Print a batch/v1 Job (and its PersistentVolumeClaim) that runs `unattended start` in a
    pod: clone in an init container, resume after a retry, push or open a PR at the end."""
    from unattended.contracts.settings import Settings
    from unattended.supervisor.run.settings import _validation_message
    from unattended.supervisor.views import kube_manifest as km

    for required in ("repo", "image", "secret"):
        if not values.get(required):
            fail(f"--{required} is required (see `unattended kube job --help`)")
    given = {p.name: values[p.name] for p in START_PARAMS if values.get(p.name) is not None}
    try:
        settings = Settings.model_validate(given)
    except Exception as exc:  # pydantic.ValidationError, imported lazily
        fail(_validation_message(exc, {k: "cli" for k in given}))
    name = values["name"] or km.job_name(values["repo"])
    branch = settings.branch or f"unattended/{name}"  # never the protected default branch
    if branch in settings.all_protected_branches():
        fail(f"--branch {branch} is a protected branch: choose another name")
    spec = km.JobSpec(
        repo=values["repo"],
        image=values["image"],
        secret=values["secret"],
        start_args=[
            *_start_args(values),
            "--branch",
            branch,
            "--run-id",
            name,
            *_metrics_args(values, name),
        ],  # the run id is the Job's name: its app.kubernetes.io/instance label
        hours=settings.hours,
        worker_timeout=settings.worker_timeout,
        grace_seconds=settings.grace_seconds,
        branch=branch,
        namespace=values["namespace"],
        storage=values["storage"],
        cpu=values["cpu"],
        memory=values["memory"],
        backoff_limit=values["backoff_limit"],
        ttl_seconds=values["ttl_seconds"],
        name=name,
        metrics_hostpath=values["metrics_hostpath"],
    )
    try:
        typer.echo(km.to_yaml(km.render_objects(spec)), nl=False)
    except km.ManifestError as exc:
        fail(str(exc))


job.__signature__ = inspect.Signature([*KUBE_PARAMS, *START_PARAMS])  # type: ignore[attr-defined]
job.__annotations__ = {p.name: p.annotation for p in (*KUBE_PARAMS, *START_PARAMS)}
kube_app.command("job")(job)


@kube_app.command("ps")
def ps(
    namespace: Annotated[
        str | None, typer.Option(help="Namespace [default: the kubeconfig context's].")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="A JSON list of rows.")] = False,
) -> None:
    """Our Jobs (label app.kubernetes.io/name=unattended) with the same columns as `ps`."""
    from unattended.supervisor.views.kube_ps import rows_from_list

    rows = rows_from_list(_kubectl_list(namespace))
    if json_out:
        typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if not rows:
        typer.echo("no runs")
        return
    _print_table(rows)


def _kubectl_list(namespace: str | None) -> dict[str, Any]:
    from unattended.platform_adapters.process import run as run_bounded
    from unattended.supervisor.run.preflight import resolve_binary
    from unattended.supervisor.views.kube_manifest import APP, NAME_LABEL

    kubectl = resolve_binary("kubectl")
    if kubectl is None:
        fail("kubectl is not on PATH: install it and select a context (kubectl config use-context)")
    argv = [kubectl, "get", "jobs,pods", "-l", f"{NAME_LABEL}={APP}", "-o", "json"]
    if namespace:
        argv += ["--namespace", namespace]
    try:
        done = run_bounded(argv, timeout_s=KUBECTL_TIMEOUT_S, max_output=None)  # twenty Jobs: MBs
    except OSError as exc:
        fail(f"cannot run kubectl: {exc.strerror or exc}")
    if done.timed_out:
        fail(f"kubectl did not answer within {KUBECTL_TIMEOUT_S:.0f}s", code=1)
    if not done.ok:
        fail(f"kubectl get failed: {done.last_error_line() or f'exit {done.returncode}'}", code=1)
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        fail("kubectl printed something that is not JSON", code=1)
    return doc if isinstance(doc, dict) else {}


def _print_table(rows: list) -> None:
    from rich.console import Console
    from rich.table import Table

    from unattended.contracts.timefmt import fmt_duration

    now = datetime.now(UTC)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for title, right in (
        ("JOB", False),
        ("PROJECT", False),
        ("POD", False),
        ("STATUS", False),
        ("ITER", True),
        ("ELAPSED", True),
        ("COST", True),
    ):
        table.add_column(title, justify="right" if right else "left", overflow="fold")
    for row in rows:
        end = row.ended_at or now
        elapsed = fmt_duration((end - row.started_at).total_seconds()) if row.started_at else "-"
        table.add_row(
            row.job,
            row.project,
            row.pod or "-",
            row.status,
            "-" if row.iteration is None else str(row.iteration),
            elapsed,
            "-" if row.cost_usd is None else f"${row.cost_usd:.2f}",
        )
    Console(highlight=False).print(table)
    for row in rows:
        extras = [
            x for x in (row.pr_url, row.pushed_ref and f"pushed {row.pushed_ref}", row.note) if x
        ]
        if extras:
            typer.echo(f"note: {row.job}: {'; '.join(extras)}")
