"""The checks ``unattended doctor`` runs: each one fact about this machine and project, a
verdict (ok, warn, fail) and, when not ok, the fix.

Required checks (config, claude binary, authentication, git work tree, permission mode, and the
live spawn when asked) decide the exit code; the rest only warn. Secrets are never read into a
message: authentication is judged by the presence of a variable or a file, not its value.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unattended.contracts.settings import Settings

LIVE_PROMPT = "Reply with the single word OK. Do not use any tools."
LIVE_TIMEOUT_S = 180.0
VERSION_TIMEOUT_S = 30.0
LOW_DISK_BYTES = 1 << 30


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok, warn, fail
    message: str
    fix: str | None = None
    required: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ok(name: str, message: str, required: bool = False) -> Check:
    return Check(name, "ok", message, None, required)


def bad(name: str, message: str, fix: str, required: bool) -> Check:
    return Check(name, "fail" if required else "warn", message, fix, required)


def load_settings(project: Path, environ: Mapping[str, str]) -> tuple[Settings, Check]:
    from unattended.contracts.settings import Settings
    from unattended.supervisor.run.settings import ConfigError, resolve_settings

    try:
        settings, _ = resolve_settings(project, {}, environ)
    except ConfigError as exc:
        fix = "correct or remove that setting in unattended.toml (or the user config.toml)"
        return Settings(), bad("config", str(exc), fix, True)
    return settings, ok("config", "settings valid (unattended.toml and user config)", True)


def check_claude(settings: Settings, environ: Mapping[str, str]) -> tuple[Check, str | None]:
    from unattended.platform_adapters import process
    from unattended.supervisor.run.preflight import resolve_binary

    fix = "install Claude Code (npm install -g @anthropic-ai/claude-code) or set claude_bin"
    binary = resolve_binary(settings.claude_bin, dict(environ))
    if binary is None:
        return bad("claude", f"claude binary not found: {settings.claude_bin!r}", fix, True), None
    if not (Path(binary).is_file() and os.access(binary, os.X_OK)):
        return bad("claude", f"not executable: {binary}", f"chmod +x {binary}", True), None
    try:
        done = process.run([binary, "--version"], timeout_s=VERSION_TIMEOUT_S, env=environ)
    except OSError as exc:
        return bad("claude", f"cannot run {binary}: {exc.strerror or exc}", fix, True), None
    if not done.ok:
        why = "timed out" if done.timed_out else f"exited {done.returncode}"
        detail = done.last_error_line()
        msg = f"`{binary} --version` {why}" + (f": {detail}" if detail else "")
        return bad("claude", msg, "reinstall Claude Code, or point claude_bin at it", True), None
    from unattended.contracts.cli_versions import NEWEST_TESTED, OLDEST_TESTED, in_tested_range

    version = done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown version"
    tested = in_tested_range(version)
    span = f"{OLDEST_TESTED} to {NEWEST_TESTED}"
    if tested:
        return ok("claude", f"{version} at {binary}, in the tested range {span}", True), binary
    where = "outside" if tested is False else "not known to be in"
    message = f"{version} at {binary}, {where} the tested range {span}"
    fix = f"install a tested version (npm install -g @anthropic-ai/claude-code@{NEWEST_TESTED})"
    # A warning, not a failure: an untested CLI usually works, its figures may be read wrong.
    return Check("claude", "warn", message, fix, True), binary


def check_auth(environ: Mapping[str, str], project: Path | None = None) -> Check:
    """Presence only (``supervisor.run.auth``): the same finding ``start`` refuses without."""
    from unattended.safety.preflight import NO_AUTH_FIX, NO_AUTH_MESSAGE
    from unattended.supervisor.run.auth import auth_source

    source = auth_source(environ, project)
    if source is None:
        return bad("auth", NO_AUTH_MESSAGE, NO_AUTH_FIX, True)
    return ok("auth", source, True)


_PREFLIGHT_LEVELS = {
    "git": True,
    "permissions": True,
    "branch": False,
    "dirty": False,
    "prompt": False,
    "state-dir": False,
}
_PREFLIGHT_FIXES = {
    "git": "run `git init` and commit, or pass --project DIR",
    "permissions": 'set allowed_tools (e.g. allowed_tools = "Bash Edit Write Read") in '
    "unattended.toml, or IS_SANDBOX=1 inside a container",
    "branch": "git switch -c night-work (or pass --branch NAME to start)",
    "dirty": "commit or stash the changes, or pass --allow-dirty to start",
    "prompt": "create PROMPT.md, or pass --prompt / --prompt-file to start",
    "state-dir": "check the project directory's owner and permissions",
}


def preflight_checks(project: Path, settings: Settings, environ: Mapping[str, str]) -> list[Check]:
    """git, branch, dirty, permissions, prompt, state-dir: judged by ``safety.preflight``."""
    from unattended.safety.preflight import preflight
    from unattended.supervisor.git.facts import GitError
    from unattended.supervisor.run.preflight import gather

    try:
        gathered = gather(project, settings, dict(environ))
    except GitError as exc:  # git itself is missing or broken: nothing git-based can be judged
        fix = "install git (e.g. apt-get install git) or put it on PATH"
        return [bad("git", str(exc), fix, True)]
    checks = []
    for result in preflight(gathered.facts, settings, None):
        if result.name not in _PREFLIGHT_LEVELS:
            continue  # the claude binary has its own, richer check
        required = _PREFLIGHT_LEVELS[result.name]
        lines = result.message.splitlines()
        if result.ok:
            checks.append(ok(result.name, lines[0], required))
            continue
        # safety's messages say "what: how to fix"; doctor puts the fix in its own words.
        message = lines[0].split(": ", 1)[0]
        if lines[1:]:
            message += f" ({', '.join(line.strip() for line in lines[1:])})"
        checks.append(bad(result.name, message, _PREFLIGHT_FIXES[result.name], required))
    return checks


def check_forge(project: Path, settings: Settings, environ: Mapping[str, str]) -> Check:
    """`on_done = "pr"`: the forge's CLI (gh, glab) is on PATH and logged in."""
    from unattended.supervisor.run.forge import forge_checks

    if settings.on_done != "pr":
        return ok("forge", f"on_done {settings.on_done}: no forge CLI needed")
    result = forge_checks(project, settings, environ)[0]
    if result.ok:
        return ok("forge", result.message)
    message, _, fix = result.message.rpartition(": ")
    return bad("forge", message or result.message, fix or "see unattended start --help", True)


def check_context_source(settings: Settings, environ: Mapping[str, str]) -> Check:
    """The meter's source, and how to switch to the API count (it needs an API credential: a
    subscription login cannot call the count endpoint)."""
    has_key = any(environ.get(v, "").strip() for v in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"))
    if settings.context_source == "api":
        if has_key:
            return ok("api-count", "on: the hook asks the API's count_tokens endpoint")
        fix = "export ANTHROPIC_API_KEY=..., or set context_source = \"transcript\""
        return bad("api-count", "on, but no ANTHROPIC_API_KEY/AUTH_TOKEN", fix, False)
    return ok(
        "api-count",
        "off, the meter reads the transcript (to enable: --context-source api, or "
        "context_source = \"api\" in unattended.toml, with ANTHROPIC_API_KEY set)",
    )


def check_notifications(settings: Settings, environ: Mapping[str, str]) -> Check:
    from unattended.platform_adapters.notify import NotifyEvent, desktop_argv

    event = NotifyEvent("done", "doctor", "doctor", 0, 0.0)
    desktop = desktop_argv(event, sys.platform, environ.get("PATH"))
    if settings.notify_cmd:
        extra = "" if isinstance(desktop, str) else f", and desktop via {Path(desktop[0]).name}"
        return ok("notify", f"notify_cmd set{extra}")
    if isinstance(desktop, str):
        return bad(
            "notify",
            f"nobody will be told how a run ends: {desktop}, no notify_cmd",
            "set notify_cmd in unattended.toml (e.g. a curl to a chat webhook), or install "
            "notify-send (libnotify-bin)",
            False,
        )
    return ok("notify", f"desktop notifications via {Path(desktop[0]).name}")


def check_inhibitor(environ: Mapping[str, str]) -> Check:
    """Take a real inhibitor for a moment (tied to this process) and let it go."""
    from unattended.platform_adapters.inhibit import start_inhibitor

    said: list[str] = []
    inhibitor = start_inhibitor(
        os.getpid(), "unattended doctor check", said.append, environ=environ, settle_s=0.3
    )
    try:
        if inhibitor.held:
            return ok("inhibitor", f"sleep inhibitor works ({inhibitor.describe()})")
    finally:
        inhibitor.release()
    why = said[0].removeprefix("warning: ") if said else inhibitor.describe()
    return bad(
        "inhibitor",
        why,
        "keep the machine awake yourself (power settings), or run where systemd-logind "
        "(Linux) or caffeinate (macOS) is available",
        False,
    )


def check_service_manager(environ: Mapping[str, str]) -> Check:
    from unattended.platform_adapters.service import make_host, systemd_reachable

    if sys.platform == "darwin":
        if shutil.which("launchctl", path=environ.get("PATH")):
            return ok("service", "launchd available (`unattended service install`)")
        return bad("service", "launchctl not found", "run `unattended start` by hand", False)
    if sys.platform.startswith("linux"):
        host = make_host(lambda _m: None, lambda _m: None, environ)
        reachable, why = systemd_reachable(host)
        if reachable:
            return ok("service", "systemd user manager reachable (`unattended service install`)")
        return bad(
            "service",
            f"no systemd user manager: {why}",
            "runs still work with `unattended start`; for a service, log in with a systemd "
            "user session (loginctl enable-linger $USER)",
            False,
        )
    return bad(
        "service",
        f"no service manager support on {sys.platform}",
        "run `unattended start` by hand",
        False,
    )


# How units written by unattended before 0.1's one-package layout named the code they run.
_OLD_LAYOUT = re.compile(r"-m\s+(?:supervisor|platform_adapters\.launchd_shim)\b")


def check_installed_units(environ: Mapping[str, str]) -> Check:
    """Service units from the old layout (`python -m supervisor`) fail at their next start."""
    from unattended.platform_adapters import units
    from unattended.platform_adapters.service import make_host

    host = make_host(lambda _m: None, lambda _m: None, environ)
    candidates = [host.systemd_user_dir / units.TEMPLATE_NAME]
    for folder in (host.launch_agents_dir, host.launchd_staging_dir):
        candidates += sorted(folder.glob("dev.unattended.*.plist")) if folder.is_dir() else []
    stale = []
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _OLD_LAYOUT.search(text.replace("<string>", " ").replace("</string>", " ")):
            stale.append(str(path))
    if stale:
        return bad(
            "units",
            f"installed from an older unattended (runs `python -m supervisor`): {', '.join(stale)}",
            "run `unattended service install` again (add --launchd on macOS) to rewrite it",
            False,
        )
    return ok("units", "no service unit from an older layout")


def check_disk(project: Path) -> Check:
    try:
        free = shutil.disk_usage(project).free
    except OSError as exc:
        return bad("disk", f"cannot read free space: {exc.strerror}", "check the mount", False)
    text = f"{free / (1 << 30):.1f} GiB free"
    if free < LOW_DISK_BYTES:
        return bad(
            "disk",
            f"only {text}: worker logs and snapshots need room",
            "free some space on this file system",
            False,
        )
    return ok("disk", text)


def check_context_meter(project: Path) -> Check:
    from unattended.contracts.meter import MeterFileError
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.records.meter_file import read_context_meter

    paths = RunPaths(project)
    try:
        meter = read_context_meter(paths.context_meter)
    except MeterFileError as exc:
        fix = "move the file aside; the next worker writes a new one"
        return bad("context", str(exc), fix, False)
    if meter is None:
        ran = paths.telemetry.is_file() and paths.telemetry.stat().st_size > 0
        if ran:
            return bad(
                "context",
                "the context meter produced no reading in the last run",
                "check `.unattended/worker-settings.json` and the run.log warnings",
                False,
            )
        return ok("context", "no reading yet (the meter runs inside workers)")
    if not meter.readings and meter.failures:
        return bad(
            "context",
            f"no reading, {meter.failures} failure(s): {meter.last_error}",
            "see the error; the meter fails open, so workers are not protected",
            False,
        )
    pct = f"{meter.percent:.1f} %" if meter.percent is not None else "? %"
    tokens = f"{meter.tokens:,} tokens, " if meter.tokens is not None else ""
    failures = f"; {meter.failures} failure(s), last: {meter.last_error}" if meter.failures else ""
    return ok(
        "context",
        f"last reading {pct} ({meter.band or '?'}), {tokens}at {meter.time or '?'}{failures}",
    )


def check_quota(project: Path, settings: Settings) -> Check:
    from unattended.contracts.paths import RunPaths
    from unattended.contracts.state import StateFileError
    from unattended.supervisor.records.state import read_state

    try:
        state = read_state(RunPaths(project))
    except StateFileError:
        state = None
    quota = state.quota if state else {}
    reported = {k: w for k, w in quota.items() if w.utilization is not None}
    if reported:
        text = ", ".join(f"{k} {w.utilization:g} %" for k, w in reported.items())
        return ok("quota", f"quota utilization reported: {text}")
    limit = settings.max_quota_pct
    if limit is None and state is not None:
        limit = state.settings.get("max_quota_pct")
    if limit is not None:
        return bad(
            "quota",
            f"max_quota_pct ({limit:g}) cannot act yet: the CLI has not reported quota utilization",
            "nothing to do now; it acts once a worker reports utilization (subscription login)",
            False,
        )
    return ok("quota", "no quota utilization reported (max_quota_pct is off)")


def check_live(
    project: Path, settings: Settings, binary: str | None, environ: Mapping[str, str]
) -> Check:
    """Spawn the worker as a run would, with a tiny prompt, and read its result."""
    from unattended.platform_adapters import process
    from unattended.supervisor.run.iteration import WorkerPlan, build_argv
    from unattended.supervisor.worker.stream import StreamReader

    if binary is None:
        return bad("live", "skipped: no claude binary", "fix the claude check first", True)
    argv = build_argv(settings, WorkerPlan(0, LIVE_PROMPT, settings.model, None), None)
    argv[0] = binary
    started = time.monotonic()
    done = process.run(
        argv, timeout_s=LIVE_TIMEOUT_S, env=environ, cwd=project,
        input=LIVE_PROMPT.encode(),  # on stdin, as a run gives it
        policy=process.worker_policy(2.0), max_output=None,
    )  # fmt: skip
    code = done.returncode
    elapsed = time.monotonic() - started
    reader = StreamReader()
    reader.feed(done.out)
    reader.finish()
    stderr = [ln for ln in done.stderr[: 1 << 16].splitlines() if ln.strip()]
    result = reader.facts.result
    fix = f"run `{binary} -p 'say OK'` by hand in the project to see why"
    if code is None:
        return bad("live", f"the worker did not answer within {LIVE_TIMEOUT_S:.0f}s", fix, True)
    if result is None:
        detail = stderr[-1] if stderr else f"exit {code}, no result event"
        return bad("live", f"the worker gave no result: {detail}", fix, True)
    if result.is_error or code != 0:
        text = (result.result or "").strip().splitlines()
        detail = text[-1] if text else f"exit {code}"
        return bad("live", f"the worker failed: {detail}", fix, True)
    cost = f", ${result.total_cost_usd:.4f}" if result.total_cost_usd else ""
    model = f", model {reader.facts.model}" if reader.facts.model else ""
    return ok("live", f"the worker answered in {elapsed:.1f}s{cost}{model}", True)
