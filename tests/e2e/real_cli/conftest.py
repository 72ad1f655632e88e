"""Shared harness for end-to-end tests that run the real Claude Code CLI against a fake API.

Why here: every e2e test needs the same three things done the same hermetic way: the pinned
CLI binary, an environment that cannot reach the real home or the internet, and a scratch git
repository. Fixtures: `claude_bin`, `hermetic_env`, `git_repo`, `process_tag`. Plain helpers
for other tests: `build_hermetic_env`, `make_git_repo`, `run_claude`, `spawn_claude`,
`kill_tree`, `reap_tagged` (import them with `from tests.e2e.real_cli.conftest import ...`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The oldest and the newest CLI we support (contracts/cli_versions.py); every real-CLI test runs
# on both: `claude_bin` is parametrised over them.
CLAUDE_CODE_VERSIONS = ("2.1.197", "2.1.332")
CLAUDE_CODE_VERSION = CLAUDE_CODE_VERSIONS[0]
REPO_ROOT = Path(__file__).resolve().parents[3]
INSTALL_PREFIX = REPO_ROOT / ".test-cache" / "claude-code"
BIN_ENV_VAR = "UNATTENDED_TEST_CLAUDE_BIN"  # one binary for every version: only for a quick look
# Every child started with a hermetic env carries this variable, so leftovers (even orphans
# re-parented away from us, like the CLI's Bash tools in their own sessions) can be found.
TAG_VAR = "UNATTENDED_E2E_TAG"
OAUTH_DUMMY_TOKEN = "sk-ant-oat01-dummy"

_STRIPPED_PREFIXES = ("ANTHROPIC_", "CLAUDE", "UNATTENDED_", "GIT_")
_STRIPPED_NAMES = {
    "IS_SANDBOX",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "NODE_OPTIONS",
}


# --- the CLI binary ---------------------------------------------------------------------------


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def ci_prefix(version: str) -> Path:
    """Where `.ci/run` installs a version: `.ci/node` (the oldest), `.ci/node-<version>`."""
    name = "node" if version == CLAUDE_CODE_VERSIONS[0] else f"node-{version}"
    return REPO_ROOT / ".ci" / name


def find_claude_bin(version: str = CLAUDE_CODE_VERSION) -> Path | None:
    """That CLI version from the env override or a known install location, without installing."""
    override = os.environ.get(BIN_ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not _executable(path):
            pytest.fail(f"{BIN_ENV_VAR}={override} is not an executable file", pytrace=False)
        return path
    for candidate in (
        ci_prefix(version) / "node_modules" / ".bin" / "claude",
        INSTALL_PREFIX / version / "node_modules" / ".bin" / "claude",
    ):
        if _executable(candidate):
            return candidate
    return None


@contextlib.contextmanager
def _install_lock(lock_path: Path) -> Iterator[None]:
    """Serialise concurrent installs (xdist workers, parallel sessions) with an flock."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; a lone session is the common case there
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_claude_bin(version: str = CLAUDE_CODE_VERSION) -> Path:
    """npm-install that CLI version under .test-cache (npm cache inside it, never the home)."""
    prefix = INSTALL_PREFIX / version
    package = f"@anthropic-ai/claude-code@{version}"
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("node/npm not found: the real Claude Code CLI cannot be installed")
    binary = prefix / "node_modules" / ".bin" / "claude"
    with _install_lock(INSTALL_PREFIX / f"claude-code-{version}.install.lock"):
        if _executable(binary):  # another process finished while we waited for the lock
            return binary
        prefix.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            npm_config_cache=str(prefix / ".npm-cache"),
            npm_config_update_notifier="false",
            npm_config_fund="false",
            npm_config_audit="false",
        )
        proc = subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-save", package],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if proc.returncode != 0 or not _executable(binary):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            pytest.fail(
                f"npm install {package} failed (rc {proc.returncode}); set "
                f"{BIN_ENV_VAR} to an installed claude. npm said: {' | '.join(tail)}",
                pytrace=False,
            )
    return binary


@pytest.fixture(scope="session", params=CLAUDE_CODE_VERSIONS, ids=lambda v: f"cli-{v}")
def claude_bin(request: pytest.FixtureRequest) -> Path:
    """Path of a real `claude` executable, once per supported version (found, or installed
    once per machine): every test that uses it runs on the oldest and the newest CLI."""
    version = request.param
    return find_claude_bin(version) or install_claude_bin(version)


def claude_version(claude_bin: Path | str) -> str:
    """`claude --version`'s number ("2.1.332")."""
    out = subprocess.run(
        [str(claude_bin), "--version"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.split()[0] if out.stdout.split() else ""


# --- the hermetic environment -------------------------------------------------------------------


def build_hermetic_env(
    tmp_path: Path, base_url: str, oauth: bool = False, *, tag: str | None = None
) -> dict[str, str]:
    """An env for the CLI (and anything it spawns) that only knows the fake and a temp home.

    Real ANTHROPIC_*/CLAUDE*/UNATTENDED_*/GIT_* variables and proxies are dropped from the
    inherited env, so a developer's key, token or proxy can never leak into a test.
    """
    home = tmp_path / "home"
    tmp = tmp_path / "tmp"
    for directory in (home, tmp):
        directory.mkdir(parents=True, exist_ok=True)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(_STRIPPED_PREFIXES)
        and name.upper() not in _STRIPPED_NAMES
        and not name.startswith("XDG_")
    }
    env.update(
        HOME=str(home),
        TMPDIR=str(tmp),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        GIT_CONFIG_NOSYSTEM="1",
        ANTHROPIC_BASE_URL=base_url,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        CLAUDE_CODE_MAX_RETRIES="0",
    )
    if oauth:
        env["CLAUDE_CODE_OAUTH_TOKEN"] = OAUTH_DUMMY_TOKEN
    else:
        env["ANTHROPIC_API_KEY"] = "dummy"
    env[TAG_VAR] = tag or uuid.uuid4().hex
    return env


@pytest.fixture
def process_tag() -> Iterator[str]:
    """A per-test tag for child envs; on teardown every process still carrying it is killed."""
    tag = uuid.uuid4().hex
    yield tag
    survivors = reap_tagged(tag)
    if survivors:
        warnings.warn(
            f"e2e test left {len(survivors)} process(es) alive; killed: {survivors}",
            stacklevel=1,
        )


@pytest.fixture
def hermetic_env(process_tag: str) -> Callable[..., dict[str, str]]:
    """`hermetic_env(tmp_path, base_url, oauth=False) -> env`, tagged for reaping."""

    def build(tmp_path: Path, base_url: str, oauth: bool = False) -> dict[str, str]:
        return build_hermetic_env(tmp_path, base_url, oauth, tag=process_tag)

    return build


# --- the scratch repository -----------------------------------------------------------------


def make_git_repo(path: Path, *, home: Path) -> Path:
    """`git init` at `path` with local identity, branch `main` and one commit (README.md)."""
    home.mkdir(parents=True, exist_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", XDG_CONFIG_HOME=str(home / ".config"))

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)

    git("init", "-q")
    git("symbolic-ref", "HEAD", "refs/heads/main")
    git("config", "user.name", "Unattended Test")
    git("config", "user.email", "unattended-test@example.invalid")
    git("config", "commit.gpgsign", "false")
    (path / "README.md").write_text("scratch repository for an e2e test\n")
    git("add", "README.md")
    git("commit", "-q", "-m", "initial commit")
    return path


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A temp git repo (`tmp_path/repo`) with one commit; HOME for git is `tmp_path/home`."""
    return make_git_repo(tmp_path / "repo", home=tmp_path / "home")


# --- running the CLI ----------------------------------------------------------------------------


@dataclass
class ClaudeRun:
    """What one finished CLI run printed; `events` parses stream-json stdout line by line."""

    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def events(self) -> list[dict[str, Any]]:
        return parse_stream(self.stdout)

    @property
    def result(self) -> dict[str, Any] | None:
        """The final `result` event, or None when the last line is something else."""
        events = self.events
        return events[-1] if events and events[-1].get("type") == "result" else None


def parse_stream(stdout: str) -> list[dict[str, Any]]:
    """Each non-empty stdout line as JSON; a non-JSON line fails the test, naming it."""
    events = []
    for number, line in enumerate(stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            pytest.fail(f"stdout line {number} is not JSON: {line[:200]!r}", pytrace=False)
    return events


def kill_tree(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL `proc` and every descendant still linked to it, then reap `proc`."""
    import psutil

    if proc.poll() is not None:
        return  # already reaped: its pid may be reused, so never walk it again
    try:
        victims = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        victims = []
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.kill()
    proc.wait(timeout=10)
    wait_gone(victims)


def wait_gone(processes: Sequence[Any], timeout: float = 5.0) -> bool:
    """Poll until every process has exited or is a zombie (PID 1 may not reap in containers)."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for process in processes:
            with contextlib.suppress(psutil.Error):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        if not alive or time.monotonic() >= deadline:
            return not alive
        time.sleep(0.05)


def tagged_processes(tag: str, *, name: str | None = None) -> list[Any]:
    """Live (non-zombie) psutil processes whose environment carries `TAG_VAR=tag`.

    `name` keeps only processes with that executable name (e.g. "sleep").
    """
    import psutil

    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if name is not None and process.name() != name:
                continue
            if process.environ().get(TAG_VAR) == tag:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def reap_tagged(tag: str) -> list[str]:
    """SIGKILL every live process tagged `tag`; returns `"pid name"` of those it found."""
    import psutil

    found = tagged_processes(tag)
    described = []
    for process in found:
        with contextlib.suppress(psutil.Error):
            described.append(f"{process.pid} {process.name()}")
            process.send_signal(signal.SIGKILL)
    wait_gone(found)
    return described


@contextlib.contextmanager
def spawn_claude(
    claude_bin: Path | str,
    args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
) -> Iterator[subprocess.Popen[str]]:
    """Start the CLI (stdin /dev/null, stdout/stderr piped, own session); kill its tree on exit."""
    proc = subprocess.Popen(
        [str(claude_bin), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        kill_tree(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def run_claude(
    claude_bin: Path | str,
    args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float = 60.0,
) -> ClaudeRun:
    """Run the CLI to completion; a run past `timeout` is killed and fails the test."""
    started = time.monotonic()
    with spawn_claude(claude_bin, args, cwd=cwd, env=env) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            stdout, stderr = proc.communicate()
            pytest.fail(
                f"claude {' '.join(args)} did not finish within {timeout:.0f}s; "
                f"stdout tail: {stdout[-500:]!r} stderr tail: {stderr[-500:]!r}",
                pytrace=False,
            )
    return ClaudeRun(proc.returncode, stdout, stderr, time.monotonic() - started)
