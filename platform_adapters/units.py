"""Render the service units: the systemd user template and the launchd agent plist.

Pure functions of (interpreter, PATH, project): installing them is `service.py`'s job. The
systemd template is package data, `platform_adapters/unit_templates/unattended@.service`
(`systemd/unattended@.service` in the source tree is a link to it), so a wheel carries it; the
plist is built entirely with plistlib (`launchd/` holds an example).
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import shutil
import string
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TEMPLATE_NAME = "unattended@.service"
UNIT_PREFIX = "unattended@"
UNIT_NAME_MAX = 255  # systemd's UNIT_NAME_MAX minus the NUL
LAUNCHD_PREFIX = "dev.unattended."
# Three minutes of a silent main loop means it hangs: systemd aborts and restarts it.
WATCHDOG_SEC = 180
# Longer than the worker grace period (grace_seconds, default 10) plus writing the final state.
TIMEOUT_STOP_SEC = 120
# What the daemon needs on top of the worker grace period to end, write its state and exit.
STOP_MARGIN_S = 30
THROTTLE_INTERVAL_S = 60
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

_ESCAPE_KEEP = frozenset(string.ascii_letters + string.digits + ":_.")
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


class UnitError(ValueError):
    """A project path or setting that no unit can express; the message is one line for users."""


# --- systemd-escape --path ---------------------------------------------------------------------


def systemd_escape_path(path: str) -> str:
    """Pure-Python `systemd-escape --path`: the same result for every absolute normalized path.

    Each byte outside [A-Za-z0-9:_.] becomes \\xNN, `/` becomes `-`, a leading `.` is escaped.
    """
    if not path.startswith("/"):
        raise UnitError(f"not an absolute path: {path!r}")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnitError(f"not a normalized path: {path!r}")
    if not parts:
        return "-"
    data = "/".join(parts).encode("utf-8", "surrogateescape")
    out: list[str] = []
    for index, byte in enumerate(data):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif char in _ESCAPE_KEEP and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def escape_path(path: str, *, environ: Mapping[str, str] | None = None) -> str:
    """`systemd-escape --path` when the tool is there (the authority), else the pure version."""
    env = os.environ if environ is None else environ
    tool = shutil.which("systemd-escape", path=env.get("PATH"))
    if tool is not None:
        from unattended.platform_adapters import process

        try:
            done = process.run([tool, "--path", "--", path], timeout_s=10, env=env)
        except OSError:
            done = None
        if done is not None and done.ok:
            return os.fsdecode(done.out.rstrip(b"\n"))
    return systemd_escape_path(path)


def project_dir(project: str | os.PathLike[str]) -> str:
    """The absolute, symlink-free project directory the units refer to."""
    return str(Path(project).expanduser().resolve())


def instance_unit_name(project: str, *, environ: Mapping[str, str] | None = None) -> str:
    """`unattended@<escaped project>.service`; UnitError when systemd cannot name it."""
    name = f"{UNIT_PREFIX}{escape_path(project, environ=environ)}.service"
    if len(name) > UNIT_NAME_MAX:
        raise UnitError(
            f"project path too long for a systemd unit name ({len(name)} > {UNIT_NAME_MAX} "
            "characters once escaped): use a shorter path or a symlink to it"
        )
    return name


# --- what the units run ------------------------------------------------------------------------


def daemon_argv(
    python: str | None = None, *, script: str | None = None, prefer_script: bool = True
) -> list[str]:
    """The absolute command that runs `unattended` from this installation.

    The `unattended` console script beside the interpreter (venvs, pipx and uv put it there) is
    preferred. Otherwise `<python> -P -m supervisor`: `-P` (Python >= 3.11) keeps the project
    directory, the unit's working directory, off sys.path, so a project's own `supervisor/` or
    `contracts/` package cannot shadow ours. Absolute but not symlink-resolved: a venv's python
    is a link, and resolving it would leave the venv.
    """
    interpreter = python or sys.executable
    if not interpreter:
        raise UnitError("cannot tell which Python runs unattended (sys.executable is empty)")
    interpreter = os.path.abspath(interpreter)
    if script is None and prefer_script:
        beside = os.path.join(os.path.dirname(interpreter), "unattended")
        if os.path.isfile(beside) and os.access(beside, os.X_OK):
            script = beside
    if script:
        return [os.path.abspath(script)]
    return [interpreter, "-P", "-m", "unattended"]


def service_path(environ: Mapping[str, str] | None = None, home: str | None = None) -> str:
    """PATH for the service: the caller's PATH, npm's usual bin dirs, then the system dirs.

    Services start with a minimal PATH that lacks npm's global bin directory, so `claude` (and
    the node, git and tools a worker needs) would not be found.
    """
    env = os.environ if environ is None else environ
    home_dir = home or env.get("HOME") or os.path.expanduser("~")
    current = env.get("PATH", "")
    extras: list[str] = []
    for tool in ("claude", "node", "npm"):
        found = shutil.which(tool, path=current)
        if found:
            extras.append(os.path.dirname(os.path.abspath(found)))
    if env.get("NPM_CONFIG_PREFIX"):
        extras.append(os.path.join(env["NPM_CONFIG_PREFIX"], "bin"))
    for rel in (".npm-global/bin", ".local/bin", ".volta/bin", ".bun/bin"):
        extras.append(os.path.join(home_dir, rel))
    extras += ["/opt/homebrew/bin", "/usr/local/bin"]
    ordered = [*current.split(os.pathsep), *extras]
    seen: set[str] = set()
    result: list[str] = []
    for entry in [*ordered, *SYSTEM_PATH]:
        if not entry or not os.path.isabs(entry) or entry in seen:
            continue
        if any(ch in entry for ch in ":\n\r\0"):
            continue
        if entry not in SYSTEM_PATH and not os.path.isdir(entry):
            continue
        seen.add(entry)
        result.append(entry)
    return os.pathsep.join(result)


# --- systemd -----------------------------------------------------------------------------------


def template_path() -> Path:
    """The unit template, shipped as package data (see the module docstring)."""
    candidate = Path(__file__).resolve().parent / "unit_templates" / TEMPLATE_NAME
    if not candidate.is_file():
        raise FileNotFoundError(f"{TEMPLATE_NAME} is missing from this installation")
    return candidate


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:@+=,-]+")


def _systemd_quote(word: str, *, dollar: bool) -> str:
    """One word for a unit file: C escapes, `%%` for %, `$$` for $ where expanded; quoted
    unless it is plain."""
    if _PLAIN_WORD.fullmatch(word):
        return word
    out: list[str] = []
    for char in word:
        if char in '\\"':
            out.append("\\" + char)
        elif char == "%":
            out.append("%%")
        elif char == "$" and dollar:
            out.append("$$")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def render_systemd_unit(
    *,
    command: Sequence[str] | None = None,
    path_env: str | None = None,
    watchdog_sec: int = WATCHDOG_SEC,
    timeout_stop_sec: int = TIMEOUT_STOP_SEC,
    template: str | None = None,
) -> str:
    """The `unattended@.service` text for this interpreter and PATH (one unit, any project)."""
    text = template if template is not None else template_path().read_text(encoding="utf-8")
    program, *args = command or daemon_argv()
    # systemd expands $VARS in the arguments but not in the program path, where `$$` stays.
    words = [_systemd_quote(program, dollar=False), *(_systemd_quote(a, dollar=True) for a in args)]
    exec_start = " ".join(words)
    path_value = service_path() if path_env is None else path_env
    values = {
        "@EXEC_START@": exec_start,
        "@PATH_ENV@": _systemd_quote(f"PATH={path_value}", dollar=False),
        "@WATCHDOG_SEC@": str(int(watchdog_sec)),
        "@TIMEOUT_STOP_SEC@": str(int(timeout_stop_sec)),
    }
    rendered = _PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), text)
    left = sorted(set(_PLACEHOLDER.findall(rendered)))
    if left:
        raise UnitError(f"unit template has unknown placeholders: {', '.join(left)}")
    return rendered


# --- launchd -----------------------------------------------------------------------------------


def launchd_label(project: str) -> str:
    """`dev.unattended.<dir name>-<8 hex of the path>`: readable, unique per project path."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", Path(project).name).strip("-").lower()[:40] or "project"
    digest = hashlib.sha256(os.fsencode(project)).hexdigest()[:8]
    return f"{LAUNCHD_PREFIX}{name}-{digest}"


def launchd_plist(
    project: str,
    *,
    command: Sequence[str] | None = None,
    python: str | None = None,
    path_env: str | None = None,
    log_dir: str,
    exit_timeout_s: int = TIMEOUT_STOP_SEC,
) -> dict[str, Any]:
    """The agent's plist as a dict: absolute argv, PATH, and restart only after a crash.

    The daemon runs under `launchd_shim` (see there), which turns the deliberate exit codes
    2-7 into 0: launchd's `KeepAlive = {SuccessfulExit = false}` then restarts only a crash.
    """
    label = launchd_label(project)
    interpreter = os.path.abspath(python or sys.executable)
    shim = [interpreter, "-P", "-m", "unattended.platform_adapters.launchd_shim"]
    daemon = [*(command or daemon_argv(python)), "start", "--foreground", "--resume-or-start"]
    return {
        "Label": label,
        "ProgramArguments": [*shim, "--", *daemon, "--project", project],
        "WorkingDirectory": project,
        "EnvironmentVariables": {
            "PATH": service_path() if path_env is None else path_env,
            "PYTHONUNBUFFERED": "1",
        },
        "RunAtLoad": True,
        # Without it launchd may treat the agent as Background and throttle its CPU and I/O.
        "ProcessType": "Standard",
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": THROTTLE_INTERVAL_S,
        "ExitTimeOut": int(exit_timeout_s),
        "StandardOutPath": os.path.join(log_dir, f"{label}.out.log"),
        "StandardErrorPath": os.path.join(log_dir, f"{label}.err.log"),
    }


def render_launchd_plist(project: str, **kwargs: Any) -> bytes:
    """The plist as XML bytes (see `launchd_plist` for the keyword arguments)."""
    return plistlib.dumps(launchd_plist(project, **kwargs), fmt=plistlib.FMT_XML, sort_keys=True)
