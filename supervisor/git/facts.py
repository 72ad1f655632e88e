"""Git facts the supervisor gathers once per iteration, and the one way it runs git.

Stdlib only and few subprocesses: this sits on the daemon's per-iteration hot path.
The supervisor never runs a destructive git command; nothing here resets, cleans or
overwrites the user's files, index, stash or branches.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from unattended.contracts.names import STATE_DIR_NAME

if TYPE_CHECKING:
    from unattended.platform_adapters.process import Handle, Outcome

GIT_TIMEOUT_S = 120.0  # one git command; a snapshot of a huge tree stays well inside it
DEFAULT_DIRTY_WHITELIST: tuple[str, ...] = ("PROMPT.md", "unattended.toml")

# Variables that would make git look at another repository or index than the one we name.
# A daemon started from inside a git hook inherits them; scrub so `-C project` is the truth.
# Pathspec-mode variables would change what our pathspecs mean.
_REPO_LOCATING_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
)


class GitError(RuntimeError):
    """A git command failed; the message names the command and git's first stderr line."""


class NotAGitRepo(GitError):
    """The project directory is not inside a git work tree."""


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for git children: ours minus repo-locating variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_LOCATING_VARS}
    if extra:
        env.update(extra)
    return env


def git_process(
    project: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | bytes | None = None,
    timeout_s: float = GIT_TIMEOUT_S,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git -C project ARGS` with output captured as bytes (no newline translation).

    `env` is added to the (scrubbed) inherited environment; stdin is /dev/null unless
    `input` is given. It runs through the process module: the loop's tick goes on while it
    runs, and past `timeout_s` its tree is ended and GitError raised. With `check` a non-zero
    exit raises GitError naming the command and git's first stderr line.
    """
    from unattended.platform_adapters import process

    argv = ["git", "-C", str(project), *args]
    data = input.encode("utf-8", "surrogateescape") if isinstance(input, str) else input
    try:
        done = process.run(argv, timeout_s=timeout_s, env=git_env(env), input=data,
                           max_output=None)  # fmt: skip
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None
    if done.returncode is None:
        raise GitError(f"git {' '.join(args[:2])} did not finish within {timeout_s:g}s")
    proc = subprocess.CompletedProcess(argv, done.returncode, done.out, done.err)
    if check and proc.returncode != 0:
        raise GitError(_describe_failure(args, proc.returncode, decode(proc.stderr)))
    return proc


class GitChild:
    """A git started by `git_spawn`, running beside others. `communicate()` waits for it
    (ticking) and returns its output; past its deadline its tree is ended and `returncode`
    stays None. Started and ended by the process module, like every child."""

    def __init__(self, handle: Handle, deadline: float) -> None:
        self._handle = handle
        self._deadline = deadline
        self._done: Outcome | None = None

    def communicate(self) -> tuple[bytes, bytes]:
        if self._done is None:
            self._done = self._handle.finish(self._deadline, max_output=None)
        return self._done.out, self._done.err

    def wait(self) -> int | None:
        self.communicate()
        return self.returncode

    @property
    def returncode(self) -> int | None:
        return None if self._done is None else self._done.returncode


def git_spawn(project: Path, *args: str, env: Mapping[str, str] | None = None) -> GitChild:
    """Start `git -C project ARGS` (stdin /dev/null, output captured) so that independent git
    calls run side by side; collect with `communicate()`. Raises GitError like `git_process`
    when git cannot be run; the same timeout applies."""
    import time

    from unattended.platform_adapters import process

    try:
        handle = process.Handle(["git", "-C", str(project), *args], env=git_env(env))
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None
    return GitChild(handle, time.monotonic() + GIT_TIMEOUT_S)


def run_git(
    project: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
    timeout_s: float = GIT_TIMEOUT_S,
) -> str:
    """Run `git -C project ARGS` and return its stdout as text.

    Undecodable bytes (non-UTF-8 file names) survive as surrogate escapes, and nothing
    is newline-translated, so `-z` output splits exactly. Without `check`, stdout is
    returned whatever the exit status.
    """
    done = git_process(project, *args, env=env, check=check, input=input, timeout_s=timeout_s)
    return decode(done.stdout)


def decode(data: bytes) -> str:
    """Git's bytes as str, losslessly (encode back with 'surrogateescape')."""
    return data.decode("utf-8", "surrogateescape")


def first_line(text: str) -> str | None:
    """Git's first line that says something (not a hint or a warning), stripped."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return next((ln for ln in lines if not ln.startswith(("hint:", "warning:"))), None)


def _describe_failure(args: Sequence[str], returncode: int, stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    # Skip git's "hint:" lines; the first real line says what went wrong.
    first = next((ln for ln in lines if not ln.startswith("hint:")), "")
    shown = " ".join(args[:4]) + (" ..." if len(args) > 4 else "")
    detail = first or f"exit status {returncode}"
    return f"git {shown} failed: {detail}"


@dataclass(frozen=True)
class RepoFacts:
    """What the supervisor knows about the repository at one instant."""

    top: Path
    git_dir: Path
    head: str | None
    branch: str | None
    detached: bool
    dirty_paths: tuple[str, ...]
    common_dir: Path | None = None  # shared git dir of a linked worktree (== git_dir otherwise)


def gather_repo_facts(
    project: Path,
    dirty_whitelist: Sequence[str] = DEFAULT_DIRTY_WHITELIST,
    located: tuple[Path, Path, Path] | None = None,
) -> RepoFacts:
    """Two git calls: where the repo is (unless ``located`` says: see ``locate_repo``), then
    `status --porcelain=v2 --branch -z`.

    Dirty paths leave out `<project>/.unattended/` and paths matching `dirty_whitelist`
    (fnmatch globs, `*` crossing '/', against paths relative to the project; paths
    outside a project that is a subdirectory are never whitelisted).
    """
    top, git_dir, common_dir = located or locate_repo(project)
    out = run_git(
        top,
        "status",
        "--porcelain=v2",
        "--branch",
        "-z",
        "--untracked-files=normal",
        # status would otherwise refresh and rewrite the index, racing the worker's own git.
        env={"GIT_OPTIONAL_LOCKS": "0"},
    )
    head, branch, paths = _parse_status_v2(out)
    prefix = project_prefix(top, project)
    dirty = tuple(p for p in paths if not _is_quiet_path(p, prefix, dirty_whitelist))
    return RepoFacts(
        top=top,
        git_dir=git_dir,
        head=head,
        branch=branch,
        detached=branch is None,
        dirty_paths=dirty,
        common_dir=common_dir,
    )


def locate_repo(project: Path) -> tuple[Path, Path, Path]:
    """(top, absolute git dir, absolute common git dir) of the work tree holding `project`."""
    if not Path(project).is_dir():
        raise NotAGitRepo(f"{project} is not a directory")
    out = run_git(
        project,
        "rev-parse",
        "--is-inside-work-tree",
        "--absolute-git-dir",
        "--git-common-dir",
        "--show-toplevel",
        check=False,
    )
    lines = out.splitlines()
    if len(lines) < 4 or lines[0] != "true":
        raise NotAGitRepo(
            f"{project} is not inside a git work tree (run `git init` there, or pass --project)"
        )
    git_dir = Path(lines[1])
    common = Path(lines[2])
    if not common.is_absolute():
        common = (Path(project) / common).resolve()
    return Path(lines[3]), git_dir, common


def _parse_status_v2(out: str) -> tuple[str | None, str | None, list[str]]:
    head: str | None = None
    branch: str | None = None
    paths: list[str] = []
    fields = out.split("\0")
    i = 0
    while i < len(fields):
        rec = fields[i]
        i += 1
        if not rec:
            continue
        kind = rec[0]
        if rec.startswith("# branch.oid "):
            oid = rec[len("# branch.oid ") :]
            head = None if oid == "(initial)" else oid
        elif rec.startswith("# branch.head "):
            name = rec[len("# branch.head ") :]
            branch = None if name == "(detached)" else name
        elif kind == "1":
            paths.append(rec.split(" ", 8)[8])
        elif kind == "2":
            paths.append(rec.split(" ", 9)[9])
            i += 1  # the rename/copy source follows as its own NUL-terminated field
        elif kind == "u":
            paths.append(rec.split(" ", 10)[10])
        elif kind in "?!":
            paths.append(rec[2:])
    return head, branch, paths


def project_prefix(top: Path, project: Path) -> str:
    """`project` relative to `top` as 'sub/dir/' ('' when it is the top)."""
    try:
        rel = Path(project).resolve().relative_to(top.resolve())
    except ValueError:
        return ""
    return "" if str(rel) == "." else rel.as_posix() + "/"


def _is_quiet_path(path: str, prefix: str, whitelist: Sequence[str]) -> bool:
    state_dir = prefix + STATE_DIR_NAME
    if path == state_dir or path.startswith(state_dir + "/"):
        return True
    if not path.startswith(prefix):
        return False  # outside the project: the whitelist names the project's own files
    rel = path[len(prefix) :]
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in whitelist)


def ensure_excluded(git_dir: Path, pattern: str = "/.unattended/") -> None:
    """Add `pattern` to the repository's info/exclude once, keeping what is there.

    A linked worktree's git dir has no info/ of its own; git reads the common dir's,
    so follow its `commondir` pointer.
    """
    exclude = _common_dir(Path(git_dir)) / "info" / "exclude"
    existing = ""
    if exclude.exists():
        existing = exclude.read_text(encoding="utf-8", errors="surrogateescape")
        if any(line.strip() == pattern for line in existing.splitlines()):
            return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    sep = "" if not existing or existing.endswith("\n") else "\n"
    from unattended.supervisor.records.fsio import open_private_file

    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    fd = open_private_file(exclude, flags, 0o644, anchor=exclude.parent)  # never via a symlink
    with os.fdopen(fd, "a", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(f"{sep}{pattern}\n")


def _common_dir(git_dir: Path) -> Path:
    pointer = git_dir / "commondir"
    if pointer.is_file():
        target = Path(pointer.read_text(encoding="utf-8").strip())
        return target if target.is_absolute() else (git_dir / target).resolve()
    return git_dir


def switch_branch(project: Path, name: str, create_from_head: bool) -> bool:
    """Check out branch `name` (for `--branch NAME`); create it at HEAD if missing.

    Returns True when the branch was created. Uses `git switch`, which refuses rather
    than overwrite local changes. Refusing a dirty tree is preflight's job, not this one's.
    """
    if not name or name.startswith("-"):
        raise GitError(f"invalid branch name {name!r}")
    if not run_git(project, "check-ref-format", "--branch", name, check=False).strip():
        raise GitError(f"invalid branch name {name!r}")
    exists = bool(
        run_git(project, "rev-parse", "-q", "--verify", f"refs/heads/{name}", check=False).strip()
    )
    if exists:
        run_git(project, "switch", "--no-guess", name)
        return False
    if not create_from_head:
        raise GitError(f"branch {name!r} does not exist")
    run_git(project, "switch", "-c", name)
    return True


def commit_range_summary(
    project: Path, before: str | None, after: str | None, limit: int = 100
) -> list[tuple[str, str]]:
    """(sha, subject) of commits reachable from `after` but not `before`, oldest first.

    At most `limit` (the newest ones). Empty when nothing changed or on any git trouble:
    this feeds telemetry and must never break an iteration.
    """
    if not after or before == after:
        return []
    rng = [after] if before is None else [f"{before}..{after}"]
    out = run_git(
        project,
        "log",
        "-z",
        "--no-color",
        f"--max-count={limit}",
        "--format=%H %s",
        *rng,
        "--",
        check=False,
    )
    commits = [rec.split(" ", 1) for rec in out.split("\0") if rec.strip()]
    return [(c[0].strip(), c[1] if len(c) > 1 else "") for c in reversed(commits)]


def files_changed(project: Path, before: str | None, after: str | None) -> int:
    """How many paths differ between two commits or trees (None = empty tree). 0 on trouble."""
    if not after or before == after:
        return 0
    base = before or empty_tree(project)
    out = run_git(
        project, "diff-tree", "-r", "-z", "--no-renames", "--name-only", base, after, check=False
    )
    return sum(1 for p in out.split("\0") if p)


def empty_tree(project: Path) -> str:
    """The empty tree's id in this repository's hash (sha1 or sha256)."""
    return run_git(project, "hash-object", "-t", "tree", "--stdin").strip()
