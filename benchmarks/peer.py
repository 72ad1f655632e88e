"""The peer (GSD-T's Node.js unattended supervisor) for side-by-side figures, never vendored.

`/work/shared/peers/` (or `$UNATTENDED_PEER_TARBALL`) holds its release tarball; `extract`
unpacks it into a temp dir of the benchmark. Without `node` on PATH or without the tarball every
peer figure is skipped with the reason `skip_reason` gives.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tarfile
from pathlib import Path

TARBALL = Path(
    os.environ.get(
        "UNATTENDED_PEER_TARBALL",
        str(Path(__file__).resolve().parents[2] / "shared" / "peers" / "gsd-t-3.29.11.tar.gz"),
    )
)
if not TARBALL.is_file():  # a worktree next to /work/shared
    TARBALL = Path("/work/shared/peers/gsd-t-3.29.11.tar.gz")

PROGRESS = "## Status: M1 EXECUTING\n\n| M1 | Measure | EXECUTING | 0.1.0 | core |\n"


def skip_reason() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not TARBALL.is_file():
        return f"no peer tarball at {TARBALL}"
    return None


def extract(dest: Path) -> Path:
    """Unpack the tarball under `dest`; returns the peer's `bin/gsd-t-unattended.cjs`."""
    with tarfile.open(TARBALL) as tar:
        tar.extractall(dest, filter="data")
    found = next(dest.rglob("bin/gsd-t-unattended.cjs"))
    return found


def context_meter(script: Path) -> Path:
    """The peer's PostToolUse context hook (`scripts/gsd-t-context-meter.js`): it counts calls
    and, every `checkFrequency`-th (5 as shipped), parses the whole transcript."""
    return script.parents[1] / "scripts" / "gsd-t-context-meter.js"


def meter_state(project: Path) -> dict:
    import json

    try:
        return json.loads((project / ".gsd-t" / ".context-meter-state.json").read_text())
    except (OSError, ValueError):
        return {}


def installed_hook(script: Path, prefix: Path) -> tuple[str, dict[str, str]] | None:
    """The hook command the peer's installer writes into ~/.claude/settings.json (read from its
    `bin/gsd-t.js`), and the env under which its `npm root -g` finds this extracted copy (a
    temp npm prefix); None without `npm` on PATH or when the command is not found."""
    if shutil.which("npm") is None:
        return None
    source = (script.parent / "gsd-t.js").read_text()
    found = re.search(r"CONTEXT_METER_HOOK_COMMAND =\s*'((?:[^'\\]|\\.)*)'", source)
    if found is None:
        return None
    package = prefix / "lib" / "node_modules" / "@tekyzinc" / "gsd-t"
    package.parent.mkdir(parents=True, exist_ok=True)
    package.symlink_to(script.parents[1])
    env = {"npm_config_prefix": str(prefix), "npm_config_update_notifier": "false"}
    return found.group(1).replace("\\'", "'"), env


def prepare_repo(repo: Path, env: dict[str, str]) -> None:
    """What the peer needs in a repository: its progress file, committed (a clean tree)."""
    (repo / ".gsd-t").mkdir(exist_ok=True)
    (repo / ".gsd-t" / "progress.md").write_text(PROGRESS)
    exclude = repo / ".git" / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    with exclude.open("a") as fh:
        fh.write("/.gsd-t/.unattended/\n/.unattended/\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "peer"], cwd=repo, env=env, check=True)


def launch(script: Path, repo: Path, env: dict[str, str], iterations: int) -> subprocess.Popen:
    """The peer's CLI (`gsd-t unattended`) in its own session, as a user would start it."""
    wrapper = script.parent / "gsd-t.js"
    argv = ["node", str(wrapper), "unattended", "--hours=1", f"--max-iterations={iterations}"]
    return subprocess.Popen(
        argv,
        cwd=repo,
        env={**env, "IS_SANDBOX": "1"},  # as root the real CLI needs it; harmless otherwise
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def state_status(repo: Path) -> str | None:
    import json

    try:
        return json.loads((repo / ".gsd-t" / ".unattended" / "state.json").read_text())["status"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def end(proc: subprocess.Popen, repo: Path) -> None:
    """The peer's whole session (wrapper, supervisor, fake worker), anything it detached that
    still works in `repo`, and the untracked files it leaves in `.gsd-t/` (events, token log,
    its workers' transcripts): the next run in `repo`, ours or its own, starts on a clean tree
    (and our daemon's snapshots do not hash the peer's transcripts)."""
    import psutil

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for other in psutil.process_iter(["cwd"]):
        cwd = other.info.get("cwd") or ""
        if cwd == str(repo) or cwd.startswith(f"{repo}/"):
            with contextlib.suppress(psutil.Error):
                other.kill()
    subprocess.run(["git", "clean", "-fdq", "--", ".gsd-t"], cwd=repo, check=True)
