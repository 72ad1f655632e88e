"""`unattended kube job`: every rendered manifest validates offline against the Kubernetes API
schema, reads back as the same YAML, and carries the exit-code table as its podFailurePolicy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml
from typer.main import get_command

from tests.conftest import REPO_ROOT, run_cli
from unattended.supervisor.views import kube_manifest as km

# A current release and the newest the package ships, both offline.
K8S_VERSIONS = ("1.35.0", "1.37.0")
BASE = [
    "kube",
    "job",
    "--repo",
    "https://github.com/acme/widgets.git",
    "--image",
    "ghcr.io/acme/unattended:0.1",
    "--secret",
    "claude-creds",
]
MATRIX = {
    "metrics-hostpath": ["--metrics-hostpath", "/var/lib/node_exporter/textfile", "--name", "m1"],
    "minimal": [],
    "storage-and-resources": ["--storage", "20Gi", "--cpu", "500m", "--memory", "4Gi"],
    "namespace-pr": ["--namespace", "night", "--on-done", "pr", "--on-done-also", "capped,stuck"],
    "start-options": [
        "--hours",
        "6.5",
        "--max-iterations",
        "40",
        "--max-cost-usd",
        "25",
        "--model",
        "claude-sonnet-4-5",
        "--allowed-tools",
        "Bash,Edit",
        "--prompt",
        'Fix: "yes", no\n0123',
        "--branch",
        "night/fixes",
        "--allow-dirty",
        "--worker-timeout",
        "1800",
    ],
    "named": [
        "--name",
        "widgets-night-1",
        "--backoff-limit",
        "1",
        "--ttl-seconds",
        "3600",
        "--on-done",
        "push",
    ],
}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def render(*args: str) -> list[dict[str, Any]]:
    proc = run_cli([*BASE, *args], _env())
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc is not None]


def the(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind]
    return found


def action_for(
    job: dict[str, Any], exit_code: int, disrupted: bool = False, container: str = "unattended"
) -> str:
    """What the Job controller does with a failed pod, evaluated from the manifest's rules."""
    spec = job["spec"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    if exit_code == 0 and not disrupted:
        return "Complete"
    for rule in spec["podFailurePolicy"]["rules"]:
        on_codes = rule.get("onExitCodes")
        if on_codes is not None:
            assert on_codes["operator"] in ("In", "NotIn")
            inside = exit_code in on_codes["values"]
            if on_codes.get("containerName") not in (None, container):
                continue
            if inside == (on_codes["operator"] == "In") and exit_code != 0:
                return rule["action"]
        for cond in rule.get("onPodConditions") or []:
            if disrupted and cond["type"] == "DisruptionTarget":
                return rule["action"]
    return "Count"  # the controller's default: retried up to backoffLimit


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_manifests_validate_against_the_api_schema(case: str) -> None:
    docs = render(*MATRIX[case])
    assert [d["kind"] for d in docs][-1] == "Job"
    for doc in docs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_exit_codes_map_onto_the_pod_failure_policy() -> None:
    job = the(render(), "Job")
    table = {code: action_for(job, code) for code in range(8)}
    assert table == {
        0: "Complete",
        1: "Count",
        2: "FailJob",
        3: "FailJob",
        4: "FailJob",
        5: "FailJob",
        6: "FailJob",
        7: "FailJob",
    }
    assert action_for(job, 137) == "Count"  # OOM-killed: retried
    assert action_for(job, 6, disrupted=True) == "Count"  # a drain's SIGTERM is retried
    assert action_for(job, 128, container="clone") == "Count"  # git clone: maybe the network
    assert action_for(job, 2, container="clone") == "FailJob"  # the entrypoint refused
    containers = {c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]}
    containers |= {c["name"] for c in job["spec"]["template"]["spec"]["containers"]}
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert {r["onExitCodes"]["containerName"] for r in rules if "onExitCodes" in r} <= containers
    assert job["spec"]["backoffLimit"] == 3


def test_job_shape() -> None:
    docs = render(*MATRIX["storage-and-resources"], "--hours", "8", "--on-done", "pr")
    pvc, job = the(docs, "PersistentVolumeClaim"), the(docs, "Job")
    name = job["metadata"]["name"]
    labels = job["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/name": "unattended", "app.kubernetes.io/instance": name}
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    assert pvc["metadata"]["name"] == name
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    spec = job["spec"]
    assert 8 * 3600 < spec["activeDeadlineSeconds"] <= 8 * 3600 + 3600 + 10 + 900
    assert spec["ttlSecondsAfterFinished"] == 7 * 24 * 3600
    pod = spec["template"]["spec"]
    assert pod["volumes"] == [{"name": "work", "persistentVolumeClaim": {"claimName": name}}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [init] = pod["initContainers"]
    [main] = pod["containers"]
    assert init["command"] == ["unattended-entrypoint", "clone"]
    assert main["command"][:3] == ["unattended-entrypoint", "run", "--"]
    assert main["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert main["envFrom"] == [{"secretRef": {"name": "claude-creds"}}]
    assert main["resources"] == {
        "requests": {"cpu": "500m", "memory": "4Gi"},
        "limits": {"memory": "4Gi"},
    }
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["IS_SANDBOX"] == "1" and env["UNATTENDED_BRANCH"] == f"unattended/{name}"
    # No secret value anywhere: only the Secret's name.
    assert "ANTHROPIC_API_KEY" not in yaml.safe_dump_all(docs)


def test_without_storage_the_volume_is_scratch() -> None:
    docs = render()
    assert [d["kind"] for d in docs] == ["Job"]
    assert the(docs, "Job")["spec"]["template"]["spec"]["volumes"] == [
        {"name": "work", "emptyDir": {}}
    ]


def test_start_options_reach_the_pod_as_start_parses_them() -> None:
    job = the(render(*MATRIX["start-options"]), "Job")
    args = job["spec"]["template"]["spec"]["containers"][0]["command"][3:]
    from unattended.supervisor.cli.start import start

    app = typer.Typer()
    app.command()(start)
    params = get_command(app).make_context("start", list(args)).params
    assert params["hours"] == 6.5 and params["max_iterations"] == 40
    assert params["max_cost_usd"] == 25 and params["model"] == "claude-sonnet-4-5"
    assert params["prompt"] == 'Fix: "yes", no\n0123'
    assert params["branch"] == "night/fixes" and params["allow_dirty"] is True
    assert params["foreground"] is False  # the entrypoint adds it
    # The run's id is the Job's name, its app.kubernetes.io/instance label (issue 15).
    assert params["run_id"] == job["metadata"]["labels"]["app.kubernetes.io/instance"]
    assert params["run_id"] == job["metadata"]["name"]


def test_yaml_reads_back_exactly() -> None:
    spec = km.JobSpec(
        repo="git@github.com:acme/widgets.git",
        image="img",
        secret="s",
        start_args=["--prompt", "a: b\n- c\n'd' \"e\" # f\ttab ünï yes null 0x1F ~"],
        hours=1,
        worker_timeout=60,
        grace_seconds=1,
        name="n",
        extra_labels={"team": "on"},
    )
    objects = km.render_objects(spec)
    assert list(yaml.safe_load_all(km.to_yaml(objects))) == objects


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repo", "https://u:tok@github.com/a/b"], "--repo must not carry credentials"),
        (["--storage", "ten"], "--storage 'ten' is not a Kubernetes quantity"),
        (["--branch", "main"], "--branch main is a protected branch"),
        (["--hours", "-1"], "invalid setting hours (from cli)"),
        (["--name", "Bad_Name"], "is not a DNS label"),
    ],
)
def test_bad_options_are_one_line(args: list[str], message: str) -> None:
    proc = run_cli([*BASE, *args], _env())
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "tok" not in proc.stderr


def test_repo_image_and_secret_are_required(tmp_path: Path) -> None:
    proc = run_cli(["kube", "job", "--image", "i", "--secret", "s"], _env(), cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == "unattended: --repo is required (see `unattended kube job --help`)"
    )


def test_metrics_hostpath_gives_node_exporter_the_textfile() -> None:
    job = the(render(*MATRIX["metrics-hostpath"]), "Job")
    pod = job["spec"]["template"]["spec"]
    assert {
        "name": "metrics",
        "hostPath": {"path": "/var/lib/node_exporter/textfile", "type": "DirectoryOrCreate"},
    } in pod["volumes"]
    main = pod["containers"][0]
    assert {"name": "metrics", "mountPath": "/metrics"} in main["volumeMounts"]
    args = main["command"]
    assert args[args.index("--metrics-textfile") + 1] == "/metrics/m1.prom"
    assert all(m["name"] != "metrics" for m in pod["initContainers"][0]["volumeMounts"])
