"""Install and uninstall the service units (systemd user template, launchd agent).

The CLI (`supervisor/cli_service.py`) only parses options; everything else is here, with the
environment, platform and output callbacks passed in so tests can point HOME, XDG_CONFIG_HOME
and PATH (with fake `systemctl`/`launchctl`) at temp dirs. Exit codes: 0 done (also when no
service manager is reachable: the unit is written and the commands are printed), 1 a service
manager command failed, 2 bad input.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from unattended.platform_adapters import process, units
from unattended.platform_adapters.process import Outcome, clean_env

Say = Callable[[str], None]

SYSTEMCTL_TIMEOUT_S = 30.0
# `systemctl start` waits for READY=1, `stop` for the daemon to end its worker.
START_STOP_TIMEOUT_S = float(units.TIMEOUT_STOP_SEC + 30)


class ServiceError(Exception):
    """Bad input: one line for the user, exit code 2."""


@dataclass
class Host:
    """Where and as whom we install: derived from the environment, so tests can redirect it."""

    environ: Mapping[str, str]
    platform: str
    uid: int
    out: Say
    err: Say

    @property
    def home(self) -> Path:
        return Path(self.environ.get("HOME") or os.path.expanduser("~"))

    @property
    def systemd_user_dir(self) -> Path:
        config = self.environ.get("XDG_CONFIG_HOME") or str(self.home / ".config")
        return Path(config) / "systemd" / "user"

    @property
    def launch_agents_dir(self) -> Path:
        """Loaded by launchd at every login: only for `--enable`."""
        return self.home / "Library" / "LaunchAgents"

    @property
    def launchd_staging_dir(self) -> Path:
        """Started by hand only: launchd never loads this directory by itself."""
        return self.home / "Library" / "Application Support" / "unattended" / "LaunchAgents"

    @property
    def launchd_log_dir(self) -> Path:
        return self.home / "Library" / "Logs" / "unattended"

    def which(self, tool: str) -> str | None:
        return shutil.which(tool, path=self.environ.get("PATH"))

    def run(self, argv: Sequence[str], timeout_s: float = SYSTEMCTL_TIMEOUT_S) -> Outcome:
        try:
            return process.run(list(argv), timeout_s=timeout_s, env=clean_env(self.environ))
        except OSError as exc:
            return Outcome(list(argv), 127, b"", str(exc).encode())


def make_host(out: Say, err: Say, environ: Mapping[str, str] | None = None) -> Host:
    env = os.environ if environ is None else environ
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Host(env, sys.platform, uid, out, err)


def choose_manager(systemd: bool, launchd: bool, platform: str) -> str:
    """`systemd` or `launchd`: the flag given, else the platform's own."""
    if systemd and launchd:
        raise ServiceError("--systemd and --launchd exclude each other")
    if systemd:
        return "systemd"
    if launchd:
        return "launchd"
    if platform == "darwin":
        return "launchd"
    if platform.startswith("linux"):
        return "systemd"
    raise ServiceError(
        f"no service manager support on {platform}: run `unattended start` yourself "
        "(see docs/platforms.md)"
    )


def resolve_project(project: str | None) -> str:
    """The absolute project dir; ServiceError unless it is a directory inside a git work tree."""
    path = Path(units.project_dir(project or os.getcwd()))
    if not path.is_dir():
        raise ServiceError(f"project directory not found: {path}")
    top = _work_tree_top(path)
    if top is None:
        raise ServiceError(f"not inside a git work tree: {path}")
    return str(top)


def _work_tree_top(path: Path) -> Path | None:
    """The work tree's top around ``path``, as ``start`` resolves the project."""
    return next((p for p in (path, *path.parents) if os.path.lexists(p / ".git")), None)


def _shell(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)


def _write_atomic(path: Path, data: bytes) -> bool:
    """Write via a temp file and rename; False when the file already had these bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_bytes() == data:
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


# --- systemd -----------------------------------------------------------------------------------


def systemd_reachable(host: Host) -> tuple[bool, str]:
    """Whether a systemd user manager answers (containers and ssh-without-session have none)."""
    systemctl = host.which("systemctl")
    if systemctl is None:
        return False, "systemctl not found on PATH"
    done = host.run([systemctl, "--user", "show", "--property=Version", "--value"], 10.0)
    if done.ok:
        return True, "reachable"
    return False, done.last_error_line() or f"systemctl --user exited {done.returncode}"


def _linger_note(host: Host) -> str:
    try:
        import pwd

        user = pwd.getpwuid(host.uid).pw_name
    except (ImportError, KeyError):
        user = host.environ.get("USER", "$USER")
    if Path("/var/lib/systemd/linger", user).exists():
        return f"Lingering is on for {user}: the run goes on after you log out."
    return (
        "The user manager stops when you log out; to keep runs going (and to start them at "
        f"boot with --enable): loginctl enable-linger {user}"
    )


def warn_if_grace_too_long(host: Host, project: str) -> None:
    """The unit's stop timeout is shared by every project: say so when this one's grace won't fit.

    On stop the daemon gives its worker `grace_seconds` after SIGINT; systemd (TimeoutStopSec)
    and launchd (ExitTimeOut) SIGKILL the daemon if it takes longer than the unit allows.
    """
    import tomllib

    try:
        with open(Path(project) / "unattended.toml", "rb") as handle:
            grace = float(tomllib.load(handle).get("grace_seconds", 0))
    except (OSError, ValueError, TypeError, tomllib.TOMLDecodeError):
        return  # no file or a bad one: `start` itself reports a bad unattended.toml
    if grace + units.STOP_MARGIN_S > units.TIMEOUT_STOP_SEC:
        host.err(
            f"unattended: warning: grace_seconds = {grace:g} in unattended.toml does not fit the "
            f"service's stop timeout ({units.TIMEOUT_STOP_SEC}s): a stopped service would kill "
            f"the worker early; use at most {units.TIMEOUT_STOP_SEC - units.STOP_MARGIN_S}s"
        )


def install_systemd(
    host: Host, project: str, *, print_only: bool, start: bool, enable: bool
) -> int:
    unit = units.instance_unit_name(project, environ=host.environ)
    warn_if_grace_too_long(host, project)
    text = units.render_systemd_unit(path_env=units.service_path(host.environ, str(host.home)))
    path = host.systemd_user_dir / units.TEMPLATE_NAME
    commands = [["systemctl", "--user", "daemon-reload"]]
    if enable:
        commands.append(["systemctl", "--user", "enable", unit])
    if start:
        commands.append(["systemctl", "--user", "start", unit])
    if print_only:
        host.out(text.rstrip("\n"))
        host.err(f"# Save the unit above as {path}, then run:")
        for argv in [commands[0], ["systemctl", "--user", "start", unit]]:
            host.err(f"#   {_shell(argv)}")
        host.err(
            f"# Add `systemctl --user enable {shlex.quote(unit)}` to start it at every login/boot "
            "(each such start begins a new run once the last one has ended)."
        )
        host.err(f"# {_linger_note(host)}")
        return 0
    changed = _write_atomic(path, text.encode("utf-8"))
    host.out(f"{'wrote' if changed else 'unchanged'}: {path}")
    reachable, why = systemd_reachable(host)
    if not reachable:
        host.err(f"No systemd user manager reachable ({why}); nothing was started. Once one is:")
        for argv in commands:
            host.out(f"  {_shell(argv)}")
        _say_hints(host, unit, start=start, enable=enable)
        return 0
    for argv in commands:
        timeout = START_STOP_TIMEOUT_S if argv[2] == "start" else SYSTEMCTL_TIMEOUT_S
        done = host.run([host.which("systemctl") or "systemctl", *argv[1:]], timeout)
        if not done.ok:
            said = done.last_error_line() or f"exit code {done.returncode}"
            host.err(f"unattended: `{_shell(argv)}` failed: {said}")
            if argv[2] == "start":
                host.err(f"see: journalctl --user -u {shlex.quote(unit)}")
            return 1
    if start:
        host.out(f"started {unit}")
    else:
        host.err("not started (--no-start): nothing is running")
    _say_hints(host, unit, start=start, enable=enable)
    return 0


def _say_hints(host: Host, unit: str, *, start: bool, enable: bool) -> None:
    quoted = shlex.quote(unit)
    if not start:
        host.out(f"start it with: systemctl --user start {quoted}")
    if enable:
        host.out(
            "With enable, every login/boot starts it, and each such start begins a new run "
            "once the last one has ended."
        )
    else:
        host.out(
            f"Not started at login; `systemctl --user enable {quoted}` (or --enable) starts it "
            "at every login/boot, each start beginning a new run once the last one has ended."
        )
    host.out(f"status: systemctl --user status {quoted}   logs: journalctl --user -u {quoted}")
    host.out(_linger_note(host))


def _enabled_links(host: Host) -> list[Path]:
    return sorted(host.systemd_user_dir.glob(f"*.wants/{units.UNIT_PREFIX}*.service"))


def _other_active_instances(host: Host, unit: str) -> list[str]:
    systemctl = host.which("systemctl") or "systemctl"
    argv = [systemctl, "--user", "list-units", "--all", "--plain", "--no-legend", "--full"]
    done = host.run([*argv, f"{units.UNIT_PREFIX}*.service"])
    others = []
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] != unit and fields[2] not in ("inactive", "failed"):
            others.append(fields[0])
    return others


def uninstall_systemd(host: Host, project: str) -> int:
    unit = units.instance_unit_name(project, environ=host.environ)
    template = host.systemd_user_dir / units.TEMPLATE_NAME
    reachable, why = systemd_reachable(host)
    did = False
    if reachable:
        systemctl = host.which("systemctl") or "systemctl"
        done = host.run([systemctl, "--user", "disable", "--now", unit], START_STOP_TIMEOUT_S)
        if done.ok:
            host.out(f"stopped and disabled {unit}")
            did = True
    for link in _enabled_links(host):
        if link.name == unit:
            link.unlink(missing_ok=True)
            host.out(f"removed {link}")
            did = True
    others = [link.name for link in _enabled_links(host)]
    if reachable:
        others += _other_active_instances(host, unit)
    if template.exists() and not others:
        template.unlink()
        host.out(f"removed {template}")
        did = True
        if reachable:
            host.run([host.which("systemctl") or "systemctl", "--user", "daemon-reload"])
    elif template.exists():
        host.out(f"kept {template}: other projects use it ({', '.join(sorted(set(others)))})")
    if not reachable:
        host.out(f"No systemd user manager reachable ({why}); stop a running instance with:")
        host.out(f"  systemctl --user disable --now {shlex.quote(unit)}")
    if not did:
        host.out(f"nothing was installed for {project}")
    return 0


# --- launchd -----------------------------------------------------------------------------------


def _launchctl(host: Host) -> str | None:
    return host.which("launchctl") if host.platform == "darwin" else None


def launchd_domain(host: Host) -> str:
    """``gui/<uid>`` when this user has a GUI (Aqua) session, else ``user/<uid>``: an SSH-only
    Mac has no GUI domain to bootstrap into. Chosen at install time; off macOS, ``gui``."""
    launchctl = _launchctl(host)
    if launchctl is None:
        return f"gui/{host.uid}"
    done = host.run([launchctl, "print", f"gui/{host.uid}"])
    return f"gui/{host.uid}" if done.ok else f"user/{host.uid}"


def install_launchd(
    host: Host, project: str, *, print_only: bool, start: bool, enable: bool
) -> int:
    label = units.launchd_label(project)
    warn_if_grace_too_long(host, project)
    target_dir = host.launch_agents_dir if enable else host.launchd_staging_dir
    path = target_dir / f"{label}.plist"
    data = units.render_launchd_plist(
        project,
        path_env=units.service_path(host.environ, str(host.home)),
        log_dir=str(host.launchd_log_dir),
    )
    domain = launchd_domain(host)
    bootout = ["launchctl", "bootout", f"{domain}/{label}"]
    bootstrap = ["launchctl", "bootstrap", domain, str(path)]
    if print_only:
        host.out(data.decode("utf-8").rstrip("\n"))
        host.err(f"# Save the plist above as {path}, then run:")
        host.err(f"#   {_shell(bootstrap)}")
        host.err(f"# In {host.launch_agents_dir} it also starts at every login (that is --enable).")
        return 0
    other = (host.launchd_staging_dir if enable else host.launch_agents_dir) / path.name
    other.unlink(missing_ok=True)  # one copy only, so login behaviour matches --enable
    host.launchd_log_dir.mkdir(parents=True, exist_ok=True)
    changed = _write_atomic(path, data)
    host.out(f"{'wrote' if changed else 'unchanged'}: {path}")
    launchctl = _launchctl(host)
    if launchctl is None:
        host.err("launchctl is not available here; nothing was started. On the Mac run:")
        host.out(f"  {_shell(bootstrap)}")
    elif start:
        host.run([launchctl, *bootout[1:]])  # reload a changed plist; fails harmlessly if absent
        done = host.run([launchctl, *bootstrap[1:]], START_STOP_TIMEOUT_S)
        if not done.ok:
            said = done.last_error_line() or f"exit code {done.returncode}"
            host.err(f"unattended: `{_shell(bootstrap)}` failed: {said}")
            return 1
        host.out(f"started {label} (logs: {host.launchd_log_dir})")
    else:
        host.err(
            f"not started (--no-start): nothing is running; start it with: {_shell(bootstrap)}"
        )
    if enable:
        host.out(
            "enabled: every login starts it, and each such start begins a new run once the "
            "last one has ended"
        )
    else:
        host.out("not started at login; install with --enable for that")
    return 0


def uninstall_launchd(host: Host, project: str) -> int:
    label = units.launchd_label(project)
    launchctl = _launchctl(host)
    did = False
    if launchctl is not None:
        for domain in (f"gui/{host.uid}", f"user/{host.uid}"):  # wherever install put it
            done = host.run([launchctl, "bootout", f"{domain}/{label}"], START_STOP_TIMEOUT_S)
            if done.ok:
                host.out(f"stopped {label} ({domain})")
                did = True
                break
    for directory in (host.launch_agents_dir, host.launchd_staging_dir):
        path = directory / f"{label}.plist"
        if path.exists():
            path.unlink()
            host.out(f"removed {path}")
            did = True
    if launchctl is None:
        host.out(f"launchctl is not available here; on the Mac: launchctl bootout gui/$UID/{label}")
    if not did:
        host.out(f"nothing was installed for {project}")
    return 0


# --- entry points for the CLI ------------------------------------------------------------------


def install(
    host: Host,
    project: str | None,
    *,
    systemd: bool = False,
    launchd: bool = False,
    print_only: bool = False,
    start: bool = True,
    enable: bool = False,
) -> int:
    """`unattended service install`; returns the exit code, raises ServiceError on bad input."""
    manager = choose_manager(systemd, launchd, host.platform)
    path = resolve_project(project)
    try:
        if manager == "systemd":
            return install_systemd(host, path, print_only=print_only, start=start, enable=enable)
        return install_launchd(host, path, print_only=print_only, start=start, enable=enable)
    except units.UnitError as exc:
        raise ServiceError(str(exc)) from exc


def uninstall(
    host: Host, project: str | None, *, systemd: bool = False, launchd: bool = False
) -> int:
    """`unattended service uninstall`: stop the instance, remove what install wrote for it."""
    manager = choose_manager(systemd, launchd, host.platform)
    path = units.project_dir(project or os.getcwd())  # it may be gone already
    top = _work_tree_top(Path(path)) if os.path.isdir(path) else None
    path = str(top) if top is not None else path
    try:
        if manager == "systemd":
            return uninstall_systemd(host, path)
        return uninstall_launchd(host, path)
    except units.UnitError as exc:
        raise ServiceError(str(exc)) from exc
