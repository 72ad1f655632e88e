"""Installed from a wheel into a fresh venv: one import package, beside the packages whose
names we used to take (Supervisor's ``supervisor``, pyup's ``safety``).

Hermetic: the wheels are built here without network (``--no-build-isolation``); the two
clashing distributions are tiny stand-ins with the real names, console scripts and layouts
(the real ones were checked once from PyPI; see the closing note of issue 10); our runtime
dependencies come from this test environment through a ``.pth`` line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(600)


def sh(*argv: str | Path, cwd: Path | None = None, env: dict | None = None, check: bool = True):
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def stand_in(tmp: Path, name: str, script: str, says: str) -> Path:
    """A distribution ``name`` with a top-level package ``name`` and a console script."""
    src = tmp / f"src-{name}"
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text(f"WHO = {name!r}\n")
    (src / name / "cli.py").write_text(f"def main():\n    print({says!r})\n")
    (src / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "99.0"
        [project.scripts]
        {script} = "{name}.cli:main"
        [tool.setuptools]
        packages = ["{name}"]
        """)
    )
    return src


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheels")
    out = tmp / "dist"
    # A copy of the sources: a build leaves build/ and *.egg-info behind, never in the checkout.
    ours = tmp / "src-unattended"
    shutil.copytree(
        REPO_ROOT,
        ours,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".ci", ".test-cache", "tests", "build", "*.egg-info", "__pycache__"
        ),
    )
    sources = {
        "unattended": ours,
        "supervisor": stand_in(tmp, "supervisor", "supervisorctl", "supervisorctl ok"),
        "safety": stand_in(tmp, "safety", "safety", "safety 99.0"),
    }
    for src in sources.values():
        sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
           "-w", out, src)  # fmt: skip
    found = {w.name.split("-")[0]: w for w in out.glob("*.whl")}
    assert set(found) == set(sources), found
    return found


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("venv") / "v"
    sh(sys.executable, "-m", "venv", root)
    site = Path(
        sh(
            root / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
    )
    sh(root / "bin/pip", "install", "-q", "--no-deps", "--no-index", wheels["unattended"],
       env=env_outside(root))  # fmt: skip
    # Then our dependencies (pydantic, typer, psutil...) from this environment, after the venv's
    # own (added after the install: pip would take this environment's editable install of
    # unattended as already satisfying the wheel).
    (site / "zz-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


def env_outside(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "UNATTENDED_"))}
    env["HOME"] = str(tmp)
    return env


def test_only_unattended_is_installed(venv: Path, tmp_path: Path) -> None:
    env = env_outside(tmp_path)
    for name in ("supervisor", "safety", "contracts", "platform_adapters"):
        done = sh(venv / "bin/python", "-c", f"import {name}", cwd=tmp_path, env=env, check=False)
        assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr, name
    done = sh(venv / "bin/python", "-m", "unattended", "--help", cwd=tmp_path, env=env)
    assert "start" in done.stdout and "status" in done.stdout
    assert "start" in sh(venv / "bin/unattended", "--help", cwd=tmp_path, env=env).stdout


def test_the_hook_runs_from_the_wheel(venv: Path, tmp_path: Path) -> None:
    """`python -I -S .../unattended/supervisor/hook/script.py`, as workers run it."""
    env = env_outside(tmp_path)
    command = json.loads(
        sh(
            venv / "bin/python", "-c",
            "import json; from unattended.contracts.settings import Settings; "
            "from unattended.supervisor.worker.settings_file import hook_command; "
            "print(json.dumps(hook_command(Settings())))",
            cwd=tmp_path, env=env,
        ).stdout
    )  # fmt: skip
    assert command[:3] == [str(venv / "bin/python"), "-I", "-S"]
    assert "/site-packages/unattended/supervisor/hook/script.py" in command[3]
    transcript = tmp_path / "t.jsonl"
    usage = {"input_tokens": 150_000, "output_tokens": 1}
    message = {"id": "m1", "model": "claude-sonnet-4-5", "role": "assistant", "usage": usage}
    transcript.write_text(json.dumps({"type": "assistant", "message": message}) + "\n")
    hook_input = {"session_id": "s", "transcript_path": str(transcript), "cwd": str(tmp_path),
                  "hook_event_name": "PostToolUse"}  # fmt: skip
    state = tmp_path / "state"
    done = subprocess.run(
        command,
        input=json.dumps(hook_input),
        env={**env, "UNATTENDED_STATE_DIR": str(state), "UNATTENDED_CONTEXT_WINDOW": "200000"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "75.0% full" in done.stdout
    assert json.loads((state / "context-meter.json").read_text())["last_reading"]["tokens"] == (
        150_000
    )


def test_beside_supervisor_and_safety(venv: Path, wheels: dict[str, Path], tmp_path: Path) -> None:
    env = env_outside(tmp_path)
    pip = venv / "bin/pip"
    sh(pip, "install", "-q", "--no-deps", "--no-index", wheels["supervisor"], wheels["safety"],
       env=env)  # fmt: skip

    def all_work(*, supervisor: bool = True, safety: bool = True) -> None:
        assert "start" in sh(venv / "bin/unattended", "--help", cwd=tmp_path, env=env).stdout
        if supervisor:
            assert sh(venv / "bin/supervisorctl", env=env).stdout.strip() == "supervisorctl ok"
            who = sh(venv / "bin/python", "-c", "import supervisor; print(supervisor.WHO)",
                     cwd=tmp_path, env=env)  # fmt: skip
            assert who.stdout.strip() == "supervisor"
        if safety:
            assert sh(venv / "bin/safety", "--version", env=env).stdout.strip() == "safety 99.0"

    all_work()
    sh(pip, "uninstall", "-q", "-y", "supervisor", env=env)
    all_work(supervisor=False)
    sh(pip, "install", "-q", "--no-deps", "--no-index", wheels["supervisor"], env=env)
    sh(pip, "uninstall", "-q", "-y", "safety", env=env)
    all_work(safety=False)
    sh(pip, "uninstall", "-q", "-y", "supervisor", env=env)
    all_work(supervisor=False, safety=False)
