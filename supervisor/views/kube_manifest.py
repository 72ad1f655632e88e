"""``unattended kube job``: one run = one Kubernetes ``batch/v1`` Job (plus, with ``--storage``,
the PersistentVolumeClaim that lets a retried pod resume the run), rendered as YAML.

Pure: options in, manifests out; no cluster is contacted. The exit-code table becomes the Job's
``podFailurePolicy`` (``restartPolicy: Never``): a disruption or exit 1 (a bug) counts against
``backoffLimit`` and is retried; 2-7 are deliberate endings a retry cannot change (``FailJob``);
0 completes the Job. Rules are evaluated in order, so a pod ended by a node drain (SIGTERM, which
the daemon answers with exit 6) is retried rather than failing the Job.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from unattended.contracts.exit_codes import ExitCode

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
APP = "unattended"
REPO_ANNOTATION = "unattended.dev/repo"
CONTAINER = "unattended"
INIT_CONTAINER = "clone"
MOUNT = "/work"
REPO_DIR = f"{MOUNT}/repo"
METRICS_MOUNT = "/metrics"
HOME_DIR = f"{MOUNT}/home"  # on the volume: a retried pod keeps the CLI's sessions for --resume
ENTRYPOINT = "unattended-entrypoint"
RUN_AS = 10001  # the image's non-root user
DEADLINE_MARGIN_S = 900  # clone, the last worker's grace and the push, past our own deadline
DEFAULT_BACKOFF_LIMIT = 3
DEFAULT_TTL_S = 7 * 24 * 3600
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


class ManifestError(Exception):
    """An option cannot go into a manifest; the message is one line naming it."""


@dataclass
class JobSpec:
    repo: str
    image: str
    secret: str
    start_args: list[str]  # `unattended start` options, passed through to the pod
    hours: float
    worker_timeout: float
    grace_seconds: float
    branch: str | None = None
    namespace: str | None = None
    storage: str | None = None
    cpu: str | None = None
    memory: str | None = None
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    ttl_seconds: int = DEFAULT_TTL_S
    name: str | None = None  # the run id in the cluster; generated when not given
    metrics_hostpath: str | None = None  # node_exporter's textfile directory on the node
    extra_labels: dict[str, str] = field(default_factory=dict)


def job_name(repo: str, token: str | None = None) -> str:
    """``unattended-<repo name>-<6 hex>``: a DNS label, unique across a fleet of Jobs."""
    base = urlsplit(repo).path if "://" in repo else repo.rsplit(":", 1)[-1]
    slug = re.sub(r"[^a-z0-9-]+", "-", base.rstrip("/").rsplit("/", 1)[-1].lower())
    slug = slug.removesuffix("-git").strip("-")[:30].strip("-") or "run"
    return f"{APP}-{slug}-{token or secrets.token_hex(3)}"


def _check(spec: JobSpec) -> None:
    parts = urlsplit(spec.repo) if "://" in spec.repo else None
    if parts is not None and (parts.username or parts.password):
        raise ManifestError(
            "--repo must not carry credentials: put them in the Secret (see docs/kubernetes.md)"
        )
    for opt, value in (("--storage", spec.storage), ("--cpu", spec.cpu), ("--memory", spec.memory)):
        if value is not None and not _QUANTITY.match(value):
            raise ManifestError(f"{opt} {value!r} is not a Kubernetes quantity (e.g. 10Gi, 500m)")
    if spec.metrics_hostpath is not None and not spec.metrics_hostpath.startswith("/"):
        raise ManifestError(f"--metrics-hostpath {spec.metrics_hostpath!r} must be absolute")
    if spec.name is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", spec.name):
        raise ManifestError(f"--name {spec.name!r} is not a DNS label (a-z, 0-9, '-', <= 63)")


def pod_failure_policy() -> dict[str, Any]:
    deliberate = [int(c) for c in ExitCode if c not in (ExitCode.DONE, ExitCode.INTERNAL_ERROR)]
    return {
        "rules": [
            {"action": "Count", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": CONTAINER, "operator": "In", "values": deliberate},
            },
            {  # the clone refused to overwrite or delete what the volume holds
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": INIT_CONTAINER,
                    "operator": "In",
                    "values": [int(ExitCode.USAGE)],
                },
            },
            {
                "action": "Count",
                "onExitCodes": {
                    "containerName": CONTAINER,
                    "operator": "In",
                    "values": [int(ExitCode.INTERNAL_ERROR)],
                },
            },
        ]
    }


def render_objects(spec: JobSpec) -> list[dict[str, Any]]:
    """[PersistentVolumeClaim (with --storage),] Job."""
    _check(spec)
    name = spec.name or job_name(spec.repo)
    labels = {NAME_LABEL: APP, INSTANCE_LABEL: name, **spec.extra_labels}
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if spec.namespace:
        meta["namespace"] = spec.namespace
    objects: list[dict[str, Any]] = []
    if spec.storage:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": dict(meta),
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": spec.storage}},
                },
            }
        )
        volume: dict[str, Any] = {"name": "work", "persistentVolumeClaim": {"claimName": name}}
    else:
        volume = {"name": "work", "emptyDir": {}}
    job_meta = {**meta, "annotations": {REPO_ANNOTATION: spec.repo}}
    objects.append(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": job_meta,
            "spec": {
                "backoffLimit": spec.backoff_limit,
                "activeDeadlineSeconds": active_deadline_s(spec),
                "ttlSecondsAfterFinished": spec.ttl_seconds,
                "podFailurePolicy": pod_failure_policy(),
                "template": {
                    "metadata": {"labels": labels, "annotations": {REPO_ANNOTATION: spec.repo}},
                    "spec": _pod_spec(spec, volume),
                },
            },
        }
    )
    return objects


def active_deadline_s(spec: JobSpec) -> int:
    """The cluster's backstop behind our own deadline: hours + the last worker + a margin."""
    return int(spec.hours * 3600 + spec.worker_timeout + spec.grace_seconds + DEADLINE_MARGIN_S)


def _pod_spec(spec: JobSpec, volume: dict[str, Any]) -> dict[str, Any]:
    env = [
        {"name": "UNATTENDED_REPO_URL", "value": spec.repo},
        {"name": "UNATTENDED_REPO_DIR", "value": REPO_DIR},
        {"name": "HOME", "value": HOME_DIR},
        {"name": "IS_SANDBOX", "value": "1"},
    ]
    if spec.branch:
        env.append({"name": "UNATTENDED_BRANCH", "value": spec.branch})
    secret_env = [{"secretRef": {"name": spec.secret}}]
    mounts = [{"name": "work", "mountPath": MOUNT}]
    volumes = [volume]
    main_mounts = list(mounts)
    if spec.metrics_hostpath:
        volumes.append(
            {
                "name": "metrics",
                "hostPath": {"path": spec.metrics_hostpath, "type": "DirectoryOrCreate"},
            }
        )
        main_mounts.append({"name": "metrics", "mountPath": METRICS_MOUNT})
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    resources: dict[str, Any] = {}
    requests = {k: v for k, v in (("cpu", spec.cpu), ("memory", spec.memory)) if v}
    if requests:
        resources["requests"] = requests
    if spec.memory:
        resources["limits"] = {"memory": spec.memory}  # no CPU limit: throttling only slows
    main: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "command": [ENTRYPOINT, "run", "--", *spec.start_args],
        "workingDir": MOUNT,
        "env": env,
        "envFrom": secret_env,
        "volumeMounts": main_mounts,
        "securityContext": security,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if resources:
        main["resources"] = resources
    return {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": int(spec.grace_seconds) + 60,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [
            {
                "name": INIT_CONTAINER,
                "image": spec.image,
                "command": [ENTRYPOINT, "clone"],
                "workingDir": MOUNT,
                "env": env,
                "envFrom": secret_env,
                "volumeMounts": mounts,
                "securityContext": security,
            }
        ],
        "containers": [main],
        "volumes": volumes,
    }


# ----- YAML ---------------------------------------------------------------------------------
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")


def _scalar(value: Any) -> str:
    """JSON scalars are YAML scalars; strings are always double-quoted, so nothing is read back
    as a number, a boolean or null."""
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else json.dumps(key)


def _emit(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines += _emit(v, indent + (1 if isinstance(v, dict) else 0))
            else:
                lines.append(f"{pad}{_key(k)}: {_empty(v)}")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = _emit(item, indent + 1)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines.append(f"{pad}- {_empty(item)}")
    return lines


def _empty(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """A multi-document YAML stream (a tiny emitter: no runtime dependency for this)."""
    return "".join("---\n" + "\n".join(_emit(obj, 0)) + "\n" for obj in objects)
