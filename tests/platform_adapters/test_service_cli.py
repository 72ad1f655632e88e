"""`unattended service install|uninstall` as a user runs it, with a fake systemctl on PATH.

HOME and XDG_CONFIG_HOME are temp dirs (hermetic_env), so nothing touches the real user's units.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.platform_adapters.fake_tools import recorded, recording_tool
from unattended.platform_adapters import units

FAKE_SYSTEMCTL = """mode=$(cat {mode} 2>/dev/null || echo down)
if [ "$mode" = down ]; then echo "Failed to connect to bus: No medium found" >&2; exit 1; fi
case " $* " in *" show "*) echo 252 ;; esac
if [ "$mode" = failstart ]; then
  case " $* " in *" start "*) echo "Job for x failed because of a timeout." >&2; exit 1 ;; esac
fi
exit 0"""


class Systemctl:
    """A fake `systemctl`: mode `down` (no user manager), `up`, or `failstart`."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin_dir = tmp_path / "fake-bin"
        self.records = tmp_path / "fake-records"
        self.mode_file = tmp_path / "systemctl-mode"
        then = FAKE_SYSTEMCTL.format(mode=shlex.quote(str(self.mode_file)))
        recording_tool(self.bin_dir, "systemctl", self.records, then=then)
        self.mode("down")

    def mode(self, mode: str) -> None:
        self.mode_file.write_text(mode)

    def calls(self) -> list[list[str]]:
        return recorded(self.records, "systemctl")

    def actions(self) -> list[list[str]]:
        """The calls other than the reachability probe."""
        return [argv for argv in self.calls() if "show" not in argv]


@pytest.fixture
def systemctl(tmp_path: Path) -> Systemctl:
    return Systemctl(tmp_path)


@pytest.fixture
def env(hermetic_env: dict[str, str], systemctl: Systemctl) -> dict[str, str]:
    return {**hermetic_env, "PATH": f"{systemctl.bin_dir}{os.pathsep}{hermetic_env['PATH']}"}


@pytest.fixture
def odd_project(tmp_path: Path, env: dict[str, str]) -> Path:
    """A git repo whose path has spaces and unicode."""
    repo = tmp_path / "my proj ü ß"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "work", env=env)
    return repo


def unit_dir(env: dict[str, str]) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user"


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_print_writes_only_the_unit(
    odd_project: Path, env: dict[str, str], systemctl: Systemctl
) -> None:
    home = Path(env["HOME"])
    before = files_under(home)
    done = run_cli(["service", "install", "--print", "--systemd"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# unattended: one systemd user unit template")
    assert done.stdout.rstrip("\n").endswith("WantedBy=default.target")
    assert "ExecStart=" in done.stdout
    assert "--foreground --resume-or-start --project %f" in done.stdout
    assert all(line.startswith("#") for line in done.stderr.splitlines()), done.stderr
    unit = units.instance_unit_name(str(odd_project))
    assert f"systemctl --user start {shlex.quote(unit)}" in done.stderr
    assert str(unit_dir(env) / units.TEMPLATE_NAME) in done.stderr
    assert "loginctl enable-linger" in done.stderr or "Lingering is on" in done.stderr
    assert files_under(home) == before
    assert systemctl.calls() == []


def test_print_launchd_is_a_plist(odd_project: Path, env: dict[str, str]) -> None:
    home = Path(env["HOME"])
    before = files_under(home)
    done = run_cli(["service", "install", "--print", "--launchd"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    plist = plistlib.loads(done.stdout.encode())
    assert plist["WorkingDirectory"] == str(odd_project)
    assert plist["ProgramArguments"][-2:] == ["--project", str(odd_project)]
    assert "launchctl bootstrap gui/" in done.stderr
    assert files_under(home) == before


def test_install_without_a_user_manager(
    odd_project: Path, env: dict[str, str], systemctl: Systemctl
) -> None:
    printed = run_cli(["service", "install", "--print", "--systemd"], env, cwd=odd_project)
    done = run_cli(["service", "install", "--systemd"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    path = unit_dir(env) / units.TEMPLATE_NAME
    assert path.read_text(encoding="utf-8") == printed.stdout
    out = done.stdout
    assert f"wrote: {path}" in out
    assert "No systemd user manager reachable (Failed to connect to bus" in done.stderr
    assert "nothing was started" in done.stderr
    unit = units.instance_unit_name(str(odd_project))
    assert "  systemctl --user daemon-reload" in out
    start_line = f"  systemctl --user start {shlex.quote(unit)}"
    assert start_line in out.splitlines()
    assert "enable-linger" in out or "Lingering is on" in out
    assert "new run once the last one has ended" in out
    assert systemctl.actions() == []  # only the probe ran
    # The printed command is valid shell that names exactly our instance.
    subprocess.run(["sh", "-c", start_line.strip()], env=env, check=False, timeout=30)
    assert systemctl.calls()[-1] == ["--user", "start", unit]
    # Installing again changes nothing.
    again = run_cli(["service", "install", "--systemd", "--no-start"], env, cwd=odd_project)
    assert again.returncode == 0 and f"unchanged: {path}" in again.stdout
    assert "start it with: systemctl --user start" in again.stdout


def test_install_with_a_user_manager(
    odd_project: Path, env: dict[str, str], systemctl: Systemctl
) -> None:
    systemctl.mode("up")
    unit = units.instance_unit_name(str(odd_project))
    done = run_cli(["service", "install", "--systemd"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    assert systemctl.actions() == [["--user", "daemon-reload"], ["--user", "start", unit]]
    assert f"started {unit}" in done.stdout
    assert "Not started at login" in done.stdout

    for old in systemctl.records.glob("*.argv"):
        old.unlink()
    done = run_cli(["service", "install", "--no-start"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    assert systemctl.actions() == [["--user", "daemon-reload"]]
    assert "not started (--no-start): nothing is running" in done.stderr

    for old in systemctl.records.glob("*.argv"):
        old.unlink()
    done = run_cli(["service", "install", "--enable"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    assert systemctl.actions() == [
        ["--user", "daemon-reload"],
        ["--user", "enable", unit],
        ["--user", "start", unit],
    ]
    assert "every login/boot starts it" in done.stdout
    assert "new run once the last one has ended" in done.stdout


def test_failed_start_is_reported(
    odd_project: Path, env: dict[str, str], systemctl: Systemctl
) -> None:
    systemctl.mode("failstart")
    done = run_cli(["service", "install"], env, cwd=odd_project)
    assert done.returncode == 1
    assert "unattended: `systemctl --user start" in done.stderr
    assert "failed: Job for x failed because of a timeout." in done.stderr
    assert "journalctl --user -u" in done.stderr
    assert "Traceback" not in done.stderr


def test_uninstall(
    odd_project: Path, project: Path, env: dict[str, str], systemctl: Systemctl
) -> None:
    template = unit_dir(env) / units.TEMPLATE_NAME
    ours = units.instance_unit_name(str(odd_project))
    other = units.instance_unit_name(str(project))
    assert run_cli(["service", "install"], env, cwd=odd_project).returncode == 0
    # Another project enabled at login keeps the shared template alive.
    wants = unit_dir(env) / "default.target.wants"
    wants.mkdir(parents=True)
    (wants / other).symlink_to(template)
    (wants / ours).symlink_to(template)
    done = run_cli(["service", "uninstall"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    assert not (wants / ours).exists() and (wants / other).is_symlink()
    assert template.exists() and "kept" in done.stdout and other in done.stdout
    assert f"systemctl --user disable --now {shlex.quote(ours)}" in done.stdout

    systemctl.mode("up")
    done = run_cli(["service", "uninstall", "--project", str(project)], env)
    assert done.returncode == 0, done.stderr
    assert ["--user", "disable", "--now", other] in systemctl.actions()
    assert not template.exists() and not (wants / other).exists()
    assert systemctl.actions()[-1] == ["--user", "daemon-reload"]

    systemctl.mode("down")
    done = run_cli(["service", "uninstall"], env, cwd=odd_project)
    assert done.returncode == 0 and "nothing was installed" in done.stdout


def test_launchd_install_and_uninstall_off_macos(odd_project: Path, env: dict[str, str]) -> None:
    home = Path(env["HOME"])
    label = units.launchd_label(str(odd_project))
    staged = home / "Library/Application Support/unattended/LaunchAgents" / f"{label}.plist"
    agent = home / "Library/LaunchAgents" / f"{label}.plist"
    done = run_cli(["service", "install", "--launchd"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    assert staged.is_file() and not agent.exists()
    assert plistlib.loads(staged.read_bytes())["WorkingDirectory"] == str(odd_project)
    assert f"launchctl bootstrap gui/{os.getuid()} {shlex.quote(str(staged))}" in done.stdout
    assert "not started at login" in done.stdout

    done = run_cli(["service", "install", "--launchd", "--enable"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    assert agent.is_file() and not staged.exists()  # one copy, where --enable puts it
    assert "every login starts it" in done.stdout

    done = run_cli(["service", "uninstall", "--launchd"], env, cwd=odd_project)
    assert done.returncode == 0, done.stderr
    assert not agent.exists() and not staged.exists()
    assert f"removed {agent}" in done.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for args, needle in (
        (["service", "install", "--print"], "not inside a git work tree"),
        (["service", "install", "--project", str(tmp_path / "nope")], "not found"),
        (["service", "install", "--systemd", "--launchd"], "exclude each other"),
        (["service", "install", "--bogus"], "bogus"),
    ):
        done = run_cli(args, env, cwd=plain)
        assert done.returncode == 2, (args, done.stderr)
        assert needle in done.stderr and "Traceback" not in done.stderr
        if needle != "bogus":
            assert done.stderr.strip().splitlines() == [done.stderr.strip()]
            assert done.stderr.startswith("unattended: ")
        assert done.stdout == ""


def test_long_grace_period_is_warned(odd_project: Path, env: dict[str, str]) -> None:
    (odd_project / "unattended.toml").write_text("grace_seconds = 200\n")
    done = run_cli(["service", "install", "--print"], env, cwd=odd_project)
    assert done.returncode == 0
    assert "grace_seconds = 200" in done.stderr and "stop timeout" in done.stderr
    (odd_project / "unattended.toml").write_text("grace_seconds = 30\n")
    done = run_cli(["service", "install", "--print"], env, cwd=odd_project)
    assert "grace_seconds" not in done.stderr


def test_help_installs_nothing(odd_project: Path, env: dict[str, str]) -> None:
    home = Path(env["HOME"])
    before = files_under(home)
    for args in (["service", "--help"], ["service", "install", "--help"], ["service"]):
        done = run_cli(args, env, cwd=odd_project)
        assert "Usage" in done.stdout + done.stderr
    assert files_under(home) == before


def test_print_json_is_one_document(odd_project: Path, env: dict[str, str]) -> None:
    import json

    plain = run_cli(["service", "install", "--print", "--systemd"], env, cwd=odd_project)
    done = run_cli(["service", "install", "--print", "--systemd", "--json"], env, cwd=odd_project)
    assert (done.returncode, done.stderr) == (0, "")
    doc = json.loads(done.stdout)
    assert doc["unit"] == plain.stdout and doc["exit_code"] == 0
    assert any(line.startswith("Save the unit above as ") for line in doc["instructions"])


def test_install_from_a_subdirectory_uses_the_work_tree_top(
    odd_project: Path, env: dict[str, str]
) -> None:
    sub = odd_project / "src"
    sub.mkdir()
    done = run_cli(["service", "install", "--systemd", "--no-start"], env, cwd=sub)
    assert done.returncode == 0, done.stderr
    unit = units.instance_unit_name(str(odd_project))
    assert f"systemctl --user start {shlex.quote(unit)}" in done.stdout
