"""The generated units: systemd-analyze accepts them, the plist round-trips, paths survive."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unattended.platform_adapters import units
from unattended.platform_adapters.units import (
    UnitError,
    daemon_argv,
    instance_unit_name,
    launchd_plist,
    render_launchd_plist,
    render_systemd_unit,
    systemd_escape_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NASTY = [
    "/home/me/my repo",
    "/home/me/проект/ü-ß",
    "/srv/.hidden/a-b_c:d.e",
    '/tmp/100% "quoted" $HOME `x` back\\slash',
    "/x/日本語 with  two spaces",
    "/",
]
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


def parse_unit(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order (keys may repeat)."""
    section, out = "", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(text: str, section: str, key: str) -> list[str]:
    return [v for s, k, v in parse_unit(text) if s == section and k == key]


def analyze(unit_file: Path, tmp_path: Path) -> tuple[int, list[str]]:
    """`systemd-analyze --user verify`; returns (exit code, stderr lines about our units)."""
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "SYSTEMD_LOG_COLOR": "0",
    }
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "--user", "--man=no", "verify", str(unit_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ours = [
        line
        for line in done.stderr.splitlines()
        if unit_file.name in line or str(unit_file.parent) in line or "unattended@" in line
    ]
    return done.returncode, ours


def write_units(tmp_path: Path, text: str, project: str) -> tuple[Path, Path]:
    unit_dir = tmp_path / "units"
    unit_dir.mkdir(exist_ok=True)
    template = unit_dir / units.TEMPLATE_NAME
    template.write_text(text, encoding="utf-8")
    instance = unit_dir / instance_unit_name(project)
    instance.write_text(text, encoding="utf-8")
    return template, instance


# --- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NASTY)
def test_pure_escape_matches_systemd_escape(path: str) -> None:
    tool = shutil.which("systemd-escape")
    if tool is None:
        pytest.skip("systemd-escape not installed")
    done = subprocess.run([tool, "--path", "--", path], capture_output=True, check=True)
    assert systemd_escape_path(path) == os.fsdecode(done.stdout.rstrip(b"\n"))
    # %f is what systemd reads back: `--unescape --path` of the instance gives the path again.
    back = subprocess.run(
        [tool, "--unescape", "--path", "--", systemd_escape_path(path)],
        capture_output=True,
        check=True,
    )
    assert os.fsdecode(back.stdout.rstrip(b"\n")) == path


def test_escape_refuses_what_no_unit_can_name() -> None:
    with pytest.raises(UnitError):
        systemd_escape_path("relative/path")
    with pytest.raises(UnitError):
        systemd_escape_path("/a/../b")
    with pytest.raises(UnitError, match="too long"):
        instance_unit_name("/" + "x" * 300)


# --- the systemd unit ----------------------------------------------------------------------------


def test_unit_directives() -> None:
    text = render_systemd_unit(command=["/opt/u/bin/unattended"], path_env="/opt/u/bin:/usr/bin")
    get = lambda section, key: values(text, section, key)  # noqa: E731
    assert get("Service", "Type") == ["notify"]
    assert get("Service", "NotifyAccess") == ["main"]
    assert get("Unit", "Documentation")[0].split()[0].endswith("/docs/platforms.md")
    assert get("Service", "KillMode") == ["mixed"]
    assert get("Service", "Restart") == ["on-failure"]
    assert get("Service", "RestartPreventExitStatus") == ["2 3 4 5 6 7"]
    assert set(get("Service", "SuccessExitStatus")[0].split()) <= {"2", "3", "4", "5", "6", "7"}
    assert get("Unit", "StartLimitIntervalSec") and get("Unit", "StartLimitBurst")
    assert not get("Service", "StartLimitIntervalSec") and not get("Service", "StartLimitBurst")
    stop = int(get("Service", "TimeoutStopSec")[0])
    assert stop >= 10 + units.STOP_MARGIN_S  # default grace_seconds 10, plus ending the run
    watchdog = int(get("Service", "WatchdogSec")[0])
    assert watchdog >= 60  # the loop ticks about once a second; generous for a busy machine
    (exec_start,) = get("Service", "ExecStart")
    assert exec_start == "/opt/u/bin/unattended start --foreground --resume-or-start --project %f"
    assert get("Service", "WorkingDirectory") == ["%f"]
    code = "\n".join(f"{k}={v}" for _, k, v in parse_unit(text))
    assert "%I" not in code and "%i" not in code
    assert "systemd-inhibit" not in exec_start
    assert "PATH=/opt/u/bin:/usr/bin" in get("Service", "Environment")
    assert get("Install", "WantedBy") == ["default.target"]
    assert "@EXEC_START@" not in text and "@PATH_ENV@" not in text


def test_default_command_is_this_installation() -> None:
    argv = daemon_argv()
    beside = Path(sys.executable).parent / "unattended"
    if beside.is_file():
        assert argv == [os.path.abspath(beside)]
    else:
        assert argv == [os.path.abspath(sys.executable), "-P", "-m", "unattended"]
    assert daemon_argv("/no/such/python") == ["/no/such/python", "-P", "-m", "unattended"]
    assert daemon_argv(script="/x/unattended") == ["/x/unattended"]


def test_minus_p_keeps_a_project_package_from_shadowing_ours(tmp_path: Path) -> None:
    """The unit runs in the project: a project's own `unattended/` must not be imported."""
    evil = tmp_path / "unattended"
    evil.mkdir()
    (evil / "__init__.py").write_text("")
    (evil / "__main__.py").write_text("print('SHADOWED')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = daemon_argv(sys.executable, prefer_script=False)
    assert argv[1] == "-P"
    done = subprocess.run(
        [*argv, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert "SHADOWED" not in done.stdout and done.returncode == 0 and "start" in done.stdout
    plain = subprocess.run(
        [sys.executable, "-m", "unattended"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "SHADOWED" in plain.stdout  # the danger -P avoids


@needs_analyze
def test_systemd_analyze_verify_accepts_template_and_instances(tmp_path: Path) -> None:
    text = render_systemd_unit()  # the real command of this installation: it must exist
    for project in (tmp_path / "my proj ü ß", tmp_path / "plain"):
        project.mkdir()
        template, instance = write_units(tmp_path, text, str(project))
        for unit_file in (template, instance):
            code, complaints = analyze(unit_file, tmp_path)
            assert complaints == [], complaints
            assert code == 0


@needs_analyze
def test_systemd_analyze_verify_with_odd_command_and_path(tmp_path: Path) -> None:
    """An install dir with spaces, unicode, % and $: verify finds the executable only if the
    ExecStart quoting is right (it reports a command that is not executable)."""
    bin_dir = tmp_path / "inst 100% $HOME ü" / "bin"
    bin_dir.mkdir(parents=True)
    exe = bin_dir / "unattended"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    text = render_systemd_unit(command=[str(exe)], path_env=f"{bin_dir}:/usr/bin:/bin")
    template, instance = write_units(tmp_path, text, "/srv/a b/ü")
    for unit_file in (template, instance):
        code, complaints = analyze(unit_file, tmp_path)
        assert complaints == [] and code == 0, complaints


@needs_analyze
def test_verify_harness_sees_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a typo and an unknown key are reported about our unit."""
    text = render_systemd_unit().replace("KillMode=mixed", "KillMode=mixd\nNotAKey=1")
    template, _ = write_units(tmp_path, text, "/srv/x")
    _, complaints = analyze(template, tmp_path)
    assert any("mixd" in line for line in complaints), complaints
    assert any("NotAKey" in line for line in complaints), complaints


def test_template_ships_as_package_data() -> None:
    """The CLI reads the template from the package; systemd/ in the source tree links to it."""
    path = units.template_path()
    assert path.parent == Path(units.__file__).resolve().parent / "unit_templates"
    link = REPO_ROOT / "systemd" / units.TEMPLATE_NAME
    assert link.resolve() == path.resolve()
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    package_data = config["tool"]["setuptools"].get("package-data", {})
    data = package_data.get("unattended.platform_adapters", [])
    assert any(Path("unit_templates", units.TEMPLATE_NAME).match(glob) for glob in data), (
        "pyproject.toml must list unattended.platform_adapters unit_templates/* as package data"
    )


# --- launchd -------------------------------------------------------------------------------------

PLIST_KEYS = {
    "Label",
    "ProgramArguments",
    "WorkingDirectory",
    "EnvironmentVariables",
    "RunAtLoad",
    "ProcessType",
    "KeepAlive",
    "ThrottleInterval",
    "StandardOutPath",
    "StandardErrorPath",
    "ExitTimeOut",
}


@pytest.mark.parametrize("project", NASTY[:5])
def test_plist_round_trips_with_the_expected_keys(project: str, tmp_path: Path) -> None:
    data = render_launchd_plist(project, path_env="/opt/homebrew/bin:/usr/bin", log_dir="/L o g")
    plist = plistlib.loads(data)
    assert plist == launchd_plist(project, path_env="/opt/homebrew/bin:/usr/bin", log_dir="/L o g")
    assert set(plist) == PLIST_KEYS
    assert plist["Label"].startswith("dev.unattended.")
    assert plist["WorkingDirectory"] == project
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ProcessType"] == "Standard"  # else macOS may throttle a background agent
    assert plist["RunAtLoad"] is True
    assert plist["EnvironmentVariables"]["PATH"] == "/opt/homebrew/bin:/usr/bin"
    assert plist["ExitTimeOut"] > 10 + units.STOP_MARGIN_S - 1
    assert isinstance(plist["ThrottleInterval"], int) and plist["ThrottleInterval"] >= 10
    argv = plist["ProgramArguments"]
    assert all(os.path.isabs(a) for a in (argv[0], argv[argv.index("--") + 1]))
    assert argv[argv.index("--") + 2 :] == [
        "start",
        "--foreground",
        "--resume-or-start",
        "--project",
        project,
    ]
    assert (
        plist["StandardOutPath"].startswith("/L o g/")
        and plist["StandardErrorPath"] != (plist["StandardOutPath"])
    )


def test_labels_are_unique_per_project() -> None:
    a, b = units.launchd_label("/a/my repo"), units.launchd_label("/b/my repo")
    assert a != b and a.startswith("dev.unattended.my-repo-")


def test_launchd_example_is_current() -> None:
    args = json.loads((REPO_ROOT / "launchd" / "example_args.json").read_text())
    project = args.pop("project")
    expected = (REPO_ROOT / "launchd" / "dev.unattended.example.plist").read_bytes()
    assert render_launchd_plist(project, **args) == expected


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (1, 1), (2, 0), (4, 0), (7, 0), (9, 9)])
def test_launchd_shim_turns_deliberate_exits_into_success(code: int, expected: int) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "unattended.platform_adapters.launchd_shim",
            "--",
            "sh",
            "-c",
            f"exit {code}",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=60,
        check=False,
    )
    assert done.returncode == expected


def test_launchd_shim_forwards_sigterm(tmp_path: Path) -> None:
    """launchd stops a job with SIGTERM to its main process: the daemon below must get it."""
    marker = tmp_path / "got-term"
    script = f"trap 'touch {marker}; exit 6' TERM; echo up; while :; do sleep 0.1; done"
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "unattended.platform_adapters.launchd_shim"]
        + ["sh", "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        time.sleep(0.2)  # the shim installs its handlers right after starting the child
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0  # the daemon's "stopped" (6) is a deliberate end
        assert marker.exists()
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
