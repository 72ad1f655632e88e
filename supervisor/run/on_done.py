"""What happens when a run ends (``--on-done print|push|pr``): push the run's branch, then open
or update a pull request with the forge's own CLI (``gh`` for GitHub, ``glab`` for GitLab).

Never force, never to a protected branch, never a secret in argv or a log line (a remote URL is
shown without its user info). A failure is one run.log line, an ``on_done`` event, a line in the
final notification and ``on_done_error`` in state.json; the run keeps its own exit code and the
local branch stays. Every child goes through ``run_bounded`` with a timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unattended.contracts.settings import Settings
from unattended.contracts.status import RunStatus
from unattended.supervisor.run.forge import forge_from_url, open_or_update_pr
from unattended.supervisor.run.push import (
    DeliveryError,
    current_branch,
    push,
    push_target,
    refuse_protected,
    remote_url,
)

if TYPE_CHECKING:
    from unattended.contracts.iteration import IterationRecord
    from unattended.contracts.state import RunState
    from unattended.supervisor.run.loop import RunContext

TITLE_MAX = 100
BODY_FILE = "pr-body.md"

Log = Callable[..., None]


@dataclass
class Delivery:
    pushed_ref: str | None = None
    pr_url: str | None = None
    error: str | None = None


def wanted(settings: Settings, status: RunStatus) -> bool:
    """Push on `done`, and on the endings listed in `on_done_also`."""
    if settings.on_done == "print":
        return False
    return status is RunStatus.DONE or status.value in settings.on_done_also


# ----- the end of a run (called from RelayLoop._finish) ---------------------------------------
def deliver_run(ctx: RunContext, status: RunStatus, log: Log) -> bool:
    """Push / open the PR for a finished run, record it in the state; True when the state
    changed. Never raises: delivery never changes the run's outcome."""
    settings, state = ctx.settings, ctx.state
    if not wanted(settings, status):
        return False
    try:
        title = pr_title(_prompt_text(ctx), state.run_id)
        body = pr_body(ctx.project, state, ctx.history)
        result = deliver(ctx.project, settings, status, title, body, ctx.environ)
    except Exception as exc:  # noqa: BLE001 - the run's outcome stands whatever happens here
        result = Delivery(error=f"on-done {settings.on_done} failed: {exc}")
    state.pushed_ref, state.pr_url, state.on_done_error = (
        result.pushed_ref,
        result.pr_url,
        result.error,
    )
    fields: dict[str, Any] = {
        "action": settings.on_done,
        "ok": result.error is None,
        "pushed_ref": result.pushed_ref,
        "pr_url": result.pr_url,
        "error": result.error,
    }
    said = [f"pushed the run's branch to {result.pushed_ref}"] if result.pushed_ref else []
    if result.pr_url:
        said.append(f"pull request: {result.pr_url}")
    if result.error:
        said.append(f"{result.error}; the work stays on the local branch")
    log("; ".join(said), kind="on_done", **fields)
    return True


def _prompt_text(ctx: RunContext) -> str:
    from unattended.supervisor.run.prompt import PromptError, read_prompt

    try:
        return read_prompt(ctx.prompt_source)
    except PromptError:
        return ""


def deliver(
    project: Path,
    settings: Settings,
    status: RunStatus,
    title: str,
    body: str,
    environ: Mapping[str, str],
) -> Delivery:
    result = Delivery()
    try:
        branch = current_branch(project)
        remote, dest = push_target(project, branch, settings)
        refuse_protected(settings, branch, dest)
        push(project, remote, branch, dest)
        result.pushed_ref = f"{remote}/{dest}"
        if settings.on_done == "pr":
            forge = settings.forge or forge_from_url(remote_url(project, remote))
            if forge is None:
                raise DeliveryError(
                    f"cannot tell the forge from remote {remote}'s URL: pass --forge github|gitlab"
                )
            body_file = _write_body(project, body)
            result.pr_url = open_or_update_pr(
                project,
                forge,
                remote,
                dest,
                title,
                body,
                body_file,
                status is RunStatus.DONE,
                environ,
            )
    except DeliveryError as exc:
        what = "pull request" if result.pushed_ref else "push"
        result.error = f"{what} failed: {exc}"
    return result


def _write_body(project: Path, body: str) -> Path:
    from unattended.contracts.paths import RunPaths
    from unattended.supervisor.records.fsio import atomic_write, ensure_private_dir

    paths = RunPaths(project)
    ensure_private_dir(paths.root)  # a worker's `git clean -fdx` may have taken it
    path = paths.root / BODY_FILE
    atomic_write(path, body)
    return path


# ----- title and body ------------------------------------------------------------------------
def pr_title(prompt: str, run_id: str) -> str:
    """The prompt's first line (Markdown heading marks dropped), cut to a title's length."""
    for line in prompt.splitlines():
        text = line.strip().lstrip("#").strip()
        if text:
            return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1].rstrip() + "…"
    return f"unattended run {run_id}"


def pr_body(project: Path, state: RunState, history: list[IterationRecord]) -> str:
    """The morning report's summary: outcome, iterations, commits, cost, tokens, stop reason,
    and where the records are on the machine that ran it (paths, not links)."""
    from unattended.supervisor.git.facts import commit_range_summary

    first = history[0].git_before.head if history and history[0].git_before else None
    last = history[-1].git_after.head if history and history[-1].git_after else None
    commits = commit_range_summary(project, first, last) if last else []
    lines = [
        f"Run `{state.run_id}` of unattended on `{project.name}`.",
        "",
        f"- Outcome: {state.status.value} (exit {state.exit_code})",
        f"- Iterations: {state.iteration} of {state.max_iterations}",
        f"- Commits: {len(commits)}",
        f"- Cost: ${state.cost_usd:.2f}",
        f"- Tokens: input {state.input_tokens:,}, output {state.output_tokens:,}, cache write "
        f"{state.cache_creation_tokens:,}, cache read {state.cache_read_tokens:,}",
        f"- Stop reason: {state.stop_reason or '-'}",
    ]
    if commits:
        lines += ["", "Commits:", *(f"- {subject}" for _sha, subject in commits[-20:])]
    lines += [
        "",
        "Records on the machine that ran it: `.unattended/run.log`, "
        "`.unattended/telemetry.jsonl`; `unattended report` writes the full morning report.",
    ]
    return "\n".join(lines) + "\n"
