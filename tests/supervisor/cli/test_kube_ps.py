"""`unattended kube ps` against a fake `kubectl` that records its argv and prints `-o json` output.

tests/data/kube/get-jobs-pods.json has the shape of `kubectl get jobs,pods -o json` (a v1 List);
every item validates against the Kubernetes API schema, so the fixture cannot drift from what a
cluster returns.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from tests.conftest import REPO_ROOT, run_cli

RECORDED = REPO_ROOT / "tests" / "data" / "kube" / "get-jobs-pods.json"
FAKE_KUBECTL = """
import json, os, sys
with open(os.environ["FAKE_KUBECTL_CALLS"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_KUBECTL_FAIL"):
    print("error: You must be logged in to the server (Unauthorized)", file=sys.stderr)
    sys.exit(1)
sys.stdout.write(open(os.environ["FAKE_KUBECTL_OUTPUT"]).read())
"""


@pytest.fixture
def kubectl_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = tmp_path / "fake_kubectl.py"
    script.write_text(FAKE_KUBECTL)
    wrapper = bin_dir / "kubectl"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(script))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_KUBECTL_CALLS": str(tmp_path / "calls.jsonl"),
        "FAKE_KUBECTL_OUTPUT": str(RECORDED),
    }


def calls(env: dict[str, str]) -> list[list[str]]:
    return [json.loads(line) for line in Path(env["FAKE_KUBECTL_CALLS"]).read_text().splitlines()]


def test_the_recorded_output_is_what_a_cluster_returns() -> None:
    for item in json.loads(RECORDED.read_text())["items"]:
        kubernetes_validate.validate(item, "1.35.0", strict=True)


def test_kube_ps_json_rows(kubectl_env: dict[str, str]) -> None:
    proc = run_cli(["kube", "ps", "--namespace", "night", "--json"], kubectl_env)
    assert proc.returncode == 0, proc.stderr
    assert calls(kubectl_env) == [
        [
            "get",
            "jobs,pods",
            "-l",
            "app.kubernetes.io/name=unattended",
            "-o",
            "json",
            "--namespace",
            "night",
        ]
    ]
    rows = {r["job"]: r for r in json.loads(proc.stdout)}
    done = rows["unattended-widgets-1a2b3c"]
    assert done["status"] == "done" and done["exit_code"] == 0
    assert done["iteration"] == 14 and done["cost_usd"] == 6.42
    assert done["project"] == "https://github.com/acme/widgets.git"
    assert done["pr_url"] == "https://github.com/acme/widgets/pull/42"
    assert done["pushed_ref"] == "origin/unattended/unattended-widgets-1a2b3c"
    assert done["pod"] == "unattended-widgets-1a2b3c-x7k2p"
    assert done["started_at"] == "2026-12-01T22:00:05Z"
    assert done["ended_at"] == "2026-12-02T03:12:40Z"
    running = rows["unattended-gadgets-4d5e6f"]
    assert running["status"] == "running" and running["iteration"] is None
    stuck = rows["unattended-sprockets-777aaa"]
    assert (stuck["status"], stuck["exit_code"], stuck["iteration"]) == ("stuck", 5, 6)
    assert stuck["reason"] == "no progress in 5 iterations"
    assert stuck["note"] == "push failed: git push to origin: rejected (fetch first)"
    retried = rows["unattended-cogs-0f0f0f"]
    assert retried["status"] == "running" and retried["pod"] == "unattended-cogs-0f0f0f-bbbbb"
    assert retried["note"] == "2 pods (retried)"
    deadline = rows["unattended-bolts-abcdef"]
    assert deadline["status"] == "failed" and deadline["note"] == "DeadlineExceeded"
    assert list(rows) == [  # by start time, oldest first
        "unattended-bolts-abcdef",
        "unattended-widgets-1a2b3c",
        "unattended-gadgets-4d5e6f",
        "unattended-sprockets-777aaa",
        "unattended-cogs-0f0f0f",
    ]


def test_kube_ps_table(kubectl_env: dict[str, str]) -> None:
    proc = run_cli(["kube", "ps"], {**kubectl_env, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    header, *lines = proc.stdout.splitlines()
    assert header.split() == ["JOB", "PROJECT", "POD", "STATUS", "ITER", "ELAPSED", "COST"]
    widgets = next(line for line in lines if line.startswith("unattended-widgets"))
    assert widgets.split()[3:] == ["done", "14", "5h12m", "$6.42"]
    assert "note: unattended-sprockets-777aaa: push failed: git push to origin: rejected" in (
        proc.stdout
    )
    assert "note: unattended-widgets-1a2b3c: https://github.com/acme/widgets/pull/42" in proc.stdout
    assert calls(kubectl_env)[0][-2:] == ["-o", "json"]  # the context's namespace


def test_kubectl_failure_is_one_line(kubectl_env: dict[str, str]) -> None:
    proc = run_cli(["kube", "ps"], {**kubectl_env, "FAKE_KUBECTL_FAIL": "1"})
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "unattended: kubectl get failed: error: You must be logged in to the server (Unauthorized)"
    )


def test_no_kubectl(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PATH": str(tmp_path)}
    proc = run_cli(["kube", "ps"], env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("unattended: kubectl is not on PATH")
