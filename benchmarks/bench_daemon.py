"""Daemon figures for issue 3, printed (never asserted): run `python benchmarks/bench_daemon.py`.

- start → ready: wall time of `unattended start` (it returns once the daemon holds the lock and
  wrote `running`), median of 5;
- per-iteration overhead: worker exit → next worker spawned, from the daemon's own event log,
  including the git evidence (two snapshots, commit count), median over 10 iterations;
- `status --json` latency, median of 10;
- daemon RSS and CPU % while a worker sleeps (20 s window, after 5 s);
- daemon RSS after a worker printed 1 GiB (`--gib` to change).

Uses the repository's fake claude (tests/fakes/fake_claude.py) in temp dirs; nothing leaves
the machine and the real home is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from unattended.contracts.paths import RunPaths

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fakes" / "fake_claude.py"


def make_env(base: Path, code: Path | None = None) -> dict[str, str]:
    """A hermetic environment under `base`; `code`: another checkout of unattended to run."""
    home = base / "home"
    bindir = base / "bin"
    home.mkdir()
    bindir.mkdir()
    claude = bindir / "claude"
    claude.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE))} "$@"\n'
    )
    claude.chmod(0o755)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "CLAUDE_", "UNATTENDED_", "NOTIFY_SOCKET", "WATCHDOG_"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local/state"),
        PATH=f"{bindir}:{env.get('PATH', '')}",
        FAKE_CLAUDE_SCENARIO=str(base / "scenario.json"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="b",
        GIT_AUTHOR_EMAIL="b@b",
        GIT_COMMITTER_NAME="b",
        GIT_COMMITTER_EMAIL="b@b",
        PYTHONPATH=str(code.resolve() if code else ROOT),
        # start's preflight wants a credential; the fake claude needs none
        ANTHROPIC_API_KEY="benchmark-only",
    )
    return env


def scenario(env: dict[str, str], invocations: list) -> None:
    path = Path(env["FAKE_CLAUDE_SCENARIO"])
    path.write_text(json.dumps(invocations))
    Path(f"{path}.counter").unlink(missing_ok=True)


def make_repo(base: Path, env: dict[str, str], name: str) -> Path:
    repo = base / name
    repo.mkdir()
    for args in (["init", "-q", "-b", "work"], ["commit", "-q", "--allow-empty", "-m", "root"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    for i in range(50):  # a small but not empty repository
        (repo / f"file{i}.txt").write_text(f"line {i}\n" * 20)
    subprocess.run(["git", "add", "."], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "files"], cwd=repo, env=env, check=True)
    (repo / "PROMPT.md").write_text("benchmark\n")
    return repo


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unattended", *args],
        cwd=env["HOME"],  # not this checkout: `-m` puts the cwd first on sys.path
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def recorded(repo: Path, record: Path, old_name: str) -> Path:
    """`record`, one of the run's records in the git dir; or where a `--code` checkout from
    before they moved there keeps it (`.unattended/`, which now holds copies refreshed once
    a second)."""
    return record if RunPaths(repo).records.is_dir() else repo / ".unattended" / old_name


def state(repo: Path) -> dict:
    return json.loads(recorded(repo, RunPaths(repo).state, "state.json").read_text())


def wait_ended(repo: Path, timeout: float = 120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = state(repo)
        if st["status"] in ("done", "blocked", "stuck", "capped", "stopped", "failed"):
            try:
                proc = psutil.Process(st["pid"])
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return st
            except psutil.NoSuchProcess:
                return st
        time.sleep(0.1)
    raise SystemExit(f"run in {repo} did not end")


START = ["start", "--allowed-tools", "Bash", "--grace-seconds", "1"]


def bench_start(base: Path, env: dict[str, str]) -> None:
    scenario(env, [[{"do": "sleep", "seconds": 60}, "text"]])
    times = []
    for i in range(5):
        repo = make_repo(base, env, f"start{i}")
        t0 = time.perf_counter()
        run = cli(env, *START, "--project", str(repo))
        times.append(time.perf_counter() - t0)
        if run.returncode != 0:
            raise SystemExit(f"start failed: {run.stderr}")
        cli(env, "stop", "--now", "--wait", "--project", str(repo))
    print(f"start → ready (CLI wall time): median {statistics.median(times) * 1000:.0f} ms, "
          f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")  # fmt: skip
    repo = base / "start0"
    time.sleep(2)  # let the stopped daemons finish exiting: measure status on a calm machine
    t = []
    for _ in range(10):
        t0 = time.perf_counter()
        cli(env, "status", "--json", "--project", str(repo))
        t.append(time.perf_counter() - t0)
    print(f"status --json: median {statistics.median(t) * 1000:.0f} ms, max {max(t) * 1000:.0f} ms")


def bench_overhead(base: Path, env: dict[str, str], iterations: int = 10) -> None:
    scenario(env, [["commit", "text"]])
    repo = make_repo(base, env, "overhead")
    # Fast fake workers would trip the storm breaker (6 launches a minute by default).
    (repo / "unattended.toml").write_text("max_launches_per_minute = 1000\n")
    cli(env, *START, "--project", str(repo), "--max-iterations", str(iterations))
    wait_ended(repo)
    events = [
        json.loads(line)
        for line in RunPaths(repo).events.read_text().splitlines()
        if line.strip()
    ]
    gaps = []
    last_end = None
    for ev in events:
        ts = ev["epoch"]
        if ev.get("kind") == "worker_exit":
            last_end = ts
        elif ev.get("kind") == "spawn" and last_end is not None:
            gaps.append(ts - last_end)
            last_end = None
    if not gaps:
        print("per-iteration overhead: no worker_exit/spawn events found")
        return
    print(f"per-iteration overhead (worker exit → next spawn, with git evidence, 50-file repo): "
          f"median {statistics.median(gaps) * 1000:.0f} ms, max {max(gaps) * 1000:.0f} ms "
          f"over {len(gaps)} gaps")  # fmt: skip


def bench_idle_and_spew(base: Path, env: dict[str, str], gib: float) -> None:
    spew = {"do": "spew", "mb": int(gib * 1024)}
    scenario(env, [[{"do": "sleep", "seconds": 75}, "text"], [spew, "text"], ["done"]])
    repo = make_repo(base, env, "idle")
    cli(env, *START, "--project", str(repo), "--max-iterations", "3", "--worker-timeout", "900")
    daemon = psutil.Process(state(repo)["pid"])
    time.sleep(5)  # past start-up: inhibitor, registry, the first snapshot, the spawn
    cpu0, t0 = daemon.cpu_times(), time.monotonic()
    time.sleep(60)  # CPU time has 10 ms resolution: a long window for a small figure
    cpu1, t1 = daemon.cpu_times(), time.monotonic()
    used = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    rss_idle = daemon.memory_info().rss
    print(f"daemon while a worker sleeps: RSS {rss_idle / 2**20:.1f} MiB, "
          f"CPU {100 * used / (t1 - t0):.3f} % over {t1 - t0:.0f} s")  # fmt: skip
    peak = last = rss_idle
    t_spew = time.monotonic()
    while True:
        try:
            rss = daemon.memory_info().rss
        except psutil.NoSuchProcess:
            break
        if rss:  # 0 once the daemon is a zombie
            peak, last = max(peak, rss), rss
        if (
            state(repo)["status"] in ("done", "failed", "stuck", "capped")
            or state(repo)["iteration"] >= 3
        ):
            break
        time.sleep(0.2)
    spew_s = time.monotonic() - t_spew
    after = last
    print(f"daemon RSS after a worker printed {gib:g} GiB: {after / 2**20:.1f} MiB "
          f"(peak {peak / 2**20:.1f} MiB; the iteration took {spew_s:.0f} s)")  # fmt: skip
    wait_ended(repo, 600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="output of the big worker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unattended-bench-") as tmp:
        base = Path(tmp)
        env = make_env(base)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        bench_start(base, env)
        bench_overhead(base, env)
        bench_idle_and_spew(base, env, args.gib)


if __name__ == "__main__":
    main()
