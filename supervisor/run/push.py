"""Push a run's branch: never forced, never to a protected branch, never prompting for
credentials, every git child bounded by a timeout (``run_bounded``). Used by ``on_done``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from unattended.contracts.settings import Settings

if TYPE_CHECKING:
    from unattended.platform_adapters.process import Outcome

PUSH_TIMEOUT_S = 180.0


class DeliveryError(Exception):
    """One line saying why the branch was not pushed or the pull request not opened."""


def redact(text: str) -> str:
    """Remove user info (a token in https://user:token@host) from a line git printed."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)


def _git(project: Path, *args: str, timeout_s: float = 30.0) -> Outcome:
    from unattended.platform_adapters.process import clean_env
    from unattended.platform_adapters.process import run as run_bounded
    from unattended.supervisor.git.facts import git_env

    # No credential prompt can hang a daemon that nobody watches.
    env = clean_env(git_env({"GIT_TERMINAL_PROMPT": "0"}))
    try:
        return run_bounded(["git", "-C", str(project), *args], timeout_s=timeout_s, env=env)
    except OSError as exc:
        raise DeliveryError(f"cannot run git: {exc.strerror or exc}") from None


def _config(project: Path, key: str) -> str | None:
    done = _git(project, "config", "--get", key)
    return done.stdout.strip() or None if done.ok else None


def current_branch(project: Path) -> str:
    done = _git(project, "symbolic-ref", "--quiet", "--short", "HEAD")
    if not done.ok or not done.stdout.strip():
        raise DeliveryError("HEAD is detached at the end of the run: no branch to push")
    return done.stdout.strip()


def push_target(project: Path, branch: str, settings: Settings) -> tuple[str, str]:
    """(remote, remote branch): --remote NAME (same branch name), else the branch's upstream,
    else origin."""
    if settings.remote:
        return settings.remote, branch
    upstream = _config(project, f"branch.{branch}.remote")
    merge = _config(project, f"branch.{branch}.merge")
    if upstream and upstream != "." and merge and merge.startswith("refs/heads/"):
        return upstream, merge.removeprefix("refs/heads/")
    return "origin", branch


def refuse_protected(settings: Settings, branch: str, dest: str) -> None:
    protected = settings.all_protected_branches()
    for name in dict.fromkeys((branch, dest)):
        if name in protected:
            raise DeliveryError(
                f"refusing to push to protected branch {name} (protected: {', '.join(protected)})"
            )


def push(project: Path, remote: str, branch: str, dest: str) -> None:
    """A plain push: no --force, no '+' in the refspec, so a diverged remote is refused."""
    done = _git(
        project,
        "push",
        "--porcelain",
        "--",
        remote,
        f"refs/heads/{branch}:refs/heads/{dest}",
        timeout_s=PUSH_TIMEOUT_S,
    )
    if done.timed_out:
        raise DeliveryError(f"git push to {remote} timed out after {PUSH_TIMEOUT_S:.0f}s")
    if not done.ok:
        raise DeliveryError(f"git push to {remote}: {_push_error(done)}")


def _push_error(done: Outcome) -> str:
    """The line that says why: the porcelain rejection, else git's fatal/error line."""
    for line in done.stdout.splitlines():
        if line.startswith("!"):
            parts = line.split("\t")
            return f"rejected {parts[-1].strip()}" if len(parts) > 2 else line
    for line in done.stderr.splitlines():
        if line.startswith(("fatal:", "error:", "remote: error:")):
            return redact(line.strip())
    return redact(done.last_error_line()) or f"exit {done.returncode}"


def remote_url(project: Path, remote: str) -> str | None:
    done = _git(project, "remote", "get-url", "--", remote)
    return done.stdout.strip() or None if done.ok else None
