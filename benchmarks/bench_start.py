"""`start` against the peer's CLI, interleaved on this machine: `python benchmarks/bench_start.py`.

Per round, in turn: the Python floor (`python -c pass`), our `unattended start` (wall time until
it returns with the daemon ready, and until state.json says `running`), and the peer's
`gsd-t unattended` (until its state.json says `running`; it runs in the foreground, so that is
its only readiness signal). Medians over the rounds, and our / peer ratios. The peer part is
skipped with a reason when `node` or its tarball is missing. `--code DIR` measures another
checkout of unattended (e.g. the commit before a change) with this script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer  # noqa: E402
from bench_daemon import START, make_env, make_repo, recorded, scenario  # noqa: E402

from unattended.contracts.paths import RunPaths  # noqa: E402

POLL_S = 0.001


def wait_status(state_file: Path, wanted: str, timeout: float = 30.0) -> float:
    """Poll until state_file's status is `wanted`; returns the perf_counter instant seen."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        try:
            if json.loads(state_file.read_text()).get("status") == wanted:
                return time.perf_counter()
        except (OSError, ValueError):
            pass
        time.sleep(POLL_S)
    raise SystemExit(f"{state_file} never reached {wanted!r}")


def floor(env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - t0


def ours(base: Path, env: dict[str, str], n: int) -> tuple[float, float]:
    repo = make_repo(base, env, f"ours{n}")
    argv = [sys.executable, "-m", "unattended", *START, "--project", str(repo)]
    t0 = time.perf_counter()
    run = subprocess.run(
        argv, cwd=repo, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    returned = time.perf_counter()
    if run.returncode != 0:
        raise SystemExit(f"start failed: {run.stderr.strip()}")
    running = wait_status(recorded(repo, RunPaths(repo).state, "state.json"), "running")
    subprocess.run(
        [sys.executable, "-m", "unattended", "stop", "--now", "--wait", "--project", str(repo)],
        cwd=repo,
        env=env,
        capture_output=True,
        check=False,
    )
    return returned - t0, running - t0


def theirs(base: Path, env: dict[str, str], script: Path, n: int) -> float:
    repo = make_repo(base, env, f"peer{n}")
    peer.prepare_repo(repo, env)
    t0 = time.perf_counter()
    proc = peer.launch(script, repo, env, iterations=1)
    try:
        running = wait_status(repo / ".gsd-t" / ".unattended" / "state.json", "running")
    finally:
        peer.end(proc, repo)
    return running - t0


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--code", type=Path, help="checkout of unattended to measure")
    args = parser.parse_args()
    skip = peer.skip_reason()
    with tempfile.TemporaryDirectory(prefix="unattended-bench-") as tmp:
        base = Path(tmp)
        env = make_env(base, args.code)
        scenario(env, [[{"do": "sleep", "seconds": 60}, "text"]])
        script = None if skip else peer.extract(base / "peer")
        floors, returned, running, peers = [], [], [], []
        for n in range(args.rounds):
            floors.append(floor(env))
            r, s = ours(base, env, n)
            returned.append(r)
            running.append(s)
            if script is not None:
                peers.append(theirs(base, env, script, n))
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.rounds} rounds, "
              f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        print(f"python floor (`python -c pass`): {ms(floors)}")
        print(f"unattended: `start` returns (daemon ready) {ms(returned)}; "
              f"state `running` {ms(running)}")  # fmt: skip
        if script is None:
            print(f"peer: skipped ({skip})")
            return
        print(f"peer: launch → state `running` {ms(peers)}")
        ratio = statistics.median(returned) / statistics.median(peers)
        ratio_running = statistics.median(running) / statistics.median(peers)
        print(f"ratio ours/peer: `start` returns {ratio:.2f}; to `running` {ratio_running:.2f}")


if __name__ == "__main__":
    main()
