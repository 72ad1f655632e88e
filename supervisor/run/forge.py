"""Open or update the pull request (GitHub, ``gh``) or merge request (GitLab, ``glab``) for a
pushed branch with the forge's own CLI, and check before a run that the CLI is there and logged
in. Children never prompt and are bounded by a timeout; URLs lose their user info first."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from unattended.contracts.settings import Settings
from unattended.supervisor.run.push import (
    DeliveryError,
    current_branch,
    push_target,
    redact,
    remote_url,
)

if TYPE_CHECKING:
    from unattended.safety.preflight import Check

FORGE_TIMEOUT_S = 60.0
AUTH_TIMEOUT_S = 20.0
FORGE_CLI = {"github": "gh", "gitlab": "glab"}
FORGE_LOGIN = {
    "github": "run `gh auth login` (or set GH_TOKEN)",
    "gitlab": "run `glab auth login` (or set GITLAB_TOKEN)",
}
# The forge CLIs must never wait for a human.
NO_PROMPT_ENV = {"GH_PROMPT_DISABLED": "1", "GH_NO_UPDATE_NOTIFIER": "1", "NO_PROMPT": "1"}


_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


def host_and_path(url: str | None) -> tuple[str, str] | None:
    """(host, owner/repo) of a forge URL (https, ssh, or scp-like); None for a local path."""
    if not url:
        return None
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme == "file" or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    else:
        match = _SCP_LIKE.match(url)
        if not match:
            return None
        host, path = match["host"], match["path"]
    path = path.strip("/").removesuffix(".git")
    return (host.lower(), path) if path.count("/") >= 1 else None


def forge_from_url(url: str | None) -> str | None:
    found = host_and_path(url)
    if found is None:
        return None
    host = found[0]
    if "github" in host:
        return "github"
    if "gitlab" in host:
        return "gitlab"
    return None


def _forge(argv: list[str], project: Path, environ: Mapping[str, str], what: str) -> str:
    from unattended.platform_adapters.process import clean_env
    from unattended.platform_adapters.process import run as run_bounded
    from unattended.supervisor.run.preflight import resolve_binary

    binary = resolve_binary(argv[0], dict(environ))
    if binary is None:
        raise DeliveryError(f"{argv[0]} is not on PATH")
    env = {**clean_env(environ), **NO_PROMPT_ENV}
    try:
        done = run_bounded(
            [binary, *argv[1:]], timeout_s=FORGE_TIMEOUT_S, env=env, cwd=str(project)
        )
    except OSError as exc:
        raise DeliveryError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if done.timed_out:
        raise DeliveryError(f"{argv[0]} {what} timed out after {FORGE_TIMEOUT_S:.0f}s")
    if not done.ok:
        detail = redact(done.last_error_line()) or f"exit {done.returncode}"
        raise DeliveryError(f"{argv[0]} {what}: {detail}")
    return done.stdout


def _repo_args(forge: str, project: Path, remote: str) -> list[str]:
    """Name the repository explicitly (several remotes would make the CLI guess), never with
    the URL's user info."""
    found = host_and_path(remote_url(project, remote))
    if found is None:
        return []
    host, path = found
    return ["--repo", f"{host}/{path}" if forge == "github" else f"https://{host}/{path}"]


def _last_url(text: str) -> str | None:
    urls = re.findall(r"https?://\S+", text)
    return urls[-1] if urls else None


def open_or_update_pr(
    project: Path,
    forge: str,
    remote: str,
    branch: str,
    title: str,
    body: str,
    body_file: Path,
    ready: bool,
    environ: Mapping[str, str],
) -> str:
    """The URL of the pull request (merge request) for ``branch``: the open one, updated, or a
    new one (a draft unless the run ended done)."""
    repo = _repo_args(forge, project, remote)
    if forge == "github":
        listed = _forge(
            [
                "gh",
                "pr",
                "list",
                *repo,
                "--head",
                branch,
                "--state",
                "open",
                "--json",
                "number,url,isDraft",
                "--limit",
                "1",
            ],
            project,
            environ,
            "pr list",
        )
        found = _first(listed)
        if found:
            number = str(found["number"])
            _forge(
                [
                    "gh",
                    "pr",
                    "edit",
                    number,
                    *repo,
                    "--title",
                    title,
                    "--body-file",
                    str(body_file),
                ],
                project,
                environ,
                "pr edit",
            )
            if ready and found.get("isDraft"):
                _forge(["gh", "pr", "ready", number, *repo], project, environ, "pr ready")
            return str(found["url"])
        draft = [] if ready else ["--draft"]
        out = _forge(
            [
                "gh",
                "pr",
                "create",
                *repo,
                "--head",
                branch,
                "--title",
                title,
                "--body-file",
                str(body_file),
                *draft,
            ],
            project,
            environ,
            "pr create",
        )
    else:
        listed = _forge(
            ["glab", "mr", "list", *repo, "--source-branch", branch, "--output", "json"],
            project,
            environ,
            "mr list",
        )
        found = _first(listed)
        if found:
            iid = str(found["iid"])
            flag = ["--ready"] if ready else []
            _forge(
                [
                    "glab",
                    "mr",
                    "update",
                    iid,
                    *repo,
                    "--title",
                    title,
                    "--description",
                    body,
                    *flag,
                ],
                project,
                environ,
                "mr update",
            )
            return str(found["web_url"])
        draft = [] if ready else ["--draft"]
        out = _forge(
            [
                "glab",
                "mr",
                "create",
                *repo,
                "--source-branch",
                branch,
                "--title",
                title,
                "--description",
                body,
                "--yes",
                *draft,
            ],
            project,
            environ,
            "mr create",
        )
    url = _last_url(out)
    if url is None:
        raise DeliveryError(f"{FORGE_CLI[forge]} printed no URL for the new pull request")
    return url


def _first(listed: str) -> dict[str, Any] | None:
    try:
        items = json.loads(listed or "[]")
    except ValueError:
        raise DeliveryError("could not read the list of open pull requests") from None
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else None


def forge_checks(project: Path, settings: Settings, environ: Mapping[str, str]) -> list[Check]:
    """For ``--on-done pr``: the forge is known, its CLI is on PATH and logged in."""
    from unattended.safety.preflight import Check

    if settings.on_done != "pr":
        return []
    try:
        forge, cli = _forge_and_cli(project, settings, environ)
    except DeliveryError as exc:
        return [Check("forge", False, str(exc))]
    return [Check("forge", True, f"{forge}: {cli} is logged in")]


def _forge_and_cli(
    project: Path, settings: Settings, environ: Mapping[str, str]
) -> tuple[str, str]:
    from unattended.platform_adapters.process import clean_env
    from unattended.platform_adapters.process import run as run_bounded
    from unattended.supervisor.run.preflight import resolve_binary

    forge = settings.forge
    if forge is None:
        try:
            branch: str | None = settings.branch or current_branch(project)
        except DeliveryError:
            branch = None
        remote = push_target(project, branch, settings)[0] if branch else "origin"
        url = remote_url(project, remote)
        forge = forge_from_url(url)
        if forge is None:
            why = "has no URL" if url is None else "is neither GitHub nor GitLab"
            raise DeliveryError(
                f"--on-done pr: remote {remote} {why}: pass --forge github|gitlab "
                f"(or --remote NAME)"
            )
    cli = FORGE_CLI[forge]
    binary = resolve_binary(cli, dict(environ))
    if binary is None:
        raise DeliveryError(
            f"--on-done pr needs {cli} on PATH for {forge}: install it, or use --on-done push"
        )
    try:
        done = run_bounded(
            [binary, "auth", "status"],
            timeout_s=AUTH_TIMEOUT_S,
            env={**clean_env(environ), **NO_PROMPT_ENV},
        )
    except OSError as exc:
        raise DeliveryError(f"cannot run {binary}: {exc.strerror or exc}") from None
    if not done.ok:
        raise DeliveryError(f"--on-done pr: {cli} is not logged in: {FORGE_LOGIN[forge]}")
    return forge, cli
