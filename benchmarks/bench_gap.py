"""Worker exit → next worker spawn, ours against the peer's, interleaved:
`python benchmarks/bench_gap.py [--files 50 20000] [--daemons 10]`.

- the gap on a repository of N files (50, and 20,000 files / ~200 MB), every worker making a
  commit: our daemon gathers its git evidence (snapshots, commit count) in that gap, the peer
  gathers none;
- the gap per daemon with one daemon, then with `--daemons` daemons of this user busy at once
  (workers of about a second), each on its own repository;
- with `--print-mib` (50 by default, 0 skips), the gap on the 50-file repo when every worker
  prints that many MiB of stream-json (assistant text / tool_use / tool_result lines) before its
  commit, and the supervisor's peak RSS meanwhile, sampled every 50 ms with psutil: our daemon
  (its pid file), the peer's `gsd-t-unattended.cjs` processes with their node children (never
  the worker).

Both sides are measured the same way: the `claude` on PATH is a shell wrapper that logs when
each worker starts and ends, around the repository's fake claude (tests/fakes/fake_claude.py).
Medians over all gaps. The peer part is skipped with a reason when `node` or its tarball is
missing. `--code DIR` measures another checkout of unattended with this script.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

from unattended.contracts.paths import RunPaths

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer  # noqa: E402
from bench_daemon import FAKE, START, cli, make_env, recorded, scenario, wait_ended  # noqa: E402

WORK = [["commit", "text"]]
BUSY = [[{"do": "sleep", "seconds": 1}, "commit", "text"]]


def printing(mib: int) -> list:
    return [[{"do": "spew", "mb": mib}, "commit", "text"]]


def timed_claude(env: dict[str, str], base: Path) -> None:
    """Replace the fake `claude` with one that logs `start|end <epoch> <cwd>` per worker."""
    claude = Path(env["PATH"].split(":", 1)[0]) / "claude"
    log = base / "workers.log"
    claude.write_text(
        "#!/bin/sh\n"
        f'echo "start $(date +%s.%N) $PWD" >> {log}\n'
        f'{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))} "$@"\n'
        "code=$?\n"
        f'echo "end $(date +%s.%N) $PWD" >> {log}\n'
        "exit $code\n"
    )
    claude.chmod(0o755)


def gaps(base: Path, repos: list[Path]) -> list[float]:
    """Worker end → next worker start, per repository, from the wrapper's log."""
    log = base / "workers.log"
    found: list[float] = []
    for repo in repos:
        last_end = None
        for line in log.read_text().splitlines():
            kind, when, cwd = line.split(" ", 2)
            if cwd != str(repo):
                continue
            if kind == "end":
                last_end = float(when)
            elif last_end is not None:
                found.append(float(when) - last_end)
                last_end = None
    return found


EXTRA_TOML: list[str] = []  # --toml lines, e.g. snapshot_ignored = []


def make_repo(base: Path, env: dict[str, str], name: str, files: int) -> Path:
    """A committed repository of `files` files of ~10 KB, ready for both supervisors."""
    repo = base / name
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "work"], cwd=repo, env=env, check=True)
    for i in range(files):
        sub = repo / f"d{i // 200:03d}" / f"s{(i // 20) % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_bytes(os.urandom(5120).hex().encode())
    (repo / "PROMPT.md").write_text("benchmark\n")
    # Fast fake workers would trip the storm breaker (6 launches a minute by default).
    toml = ["max_launches_per_minute = 1000", *EXTRA_TOML]
    (repo / "unattended.toml").write_text("\n".join(toml) + "\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "files"], cwd=repo, env=env, check=True)
    peer.prepare_repo(repo, env)
    # Packed, as a clone is, and no automatic gc: a worker's commit would otherwise start
    # `git gc --auto` in the background, holding the worker's stdout, and both sides would
    # measure git's housekeeping (up to a second) instead of their own.
    subprocess.run(["git", "repack", "-adq"], cwd=repo, env=env, check=True)
    for key, value in (("gc.auto", "0"), ("maintenance.auto", "false")):
        subprocess.run(["git", "config", key, value], cwd=repo, env=env, check=True)
    return repo


def run_ours(env: dict[str, str], repos: list[Path], iterations: int) -> None:
    for repo in repos:
        started = cli(env, *START, "--project", str(repo), "--max-iterations", str(iterations))
        if started.returncode != 0:
            raise SystemExit(f"start failed: {started.stderr.strip()}")
    for repo in repos:
        wait_ended(repo, 600)


def run_peer(script: Path, env: dict[str, str], repos: list[Path], iterations: int) -> None:
    procs = [peer.launch(script, repo, env, iterations) for repo in repos]
    end = time.monotonic() + 600
    for proc, repo in zip(procs, repos, strict=True):
        try:
            proc.wait(timeout=max(1.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"peer in {repo} did not finish; ended")
        peer.end(proc, repo)


def our_daemon(repo: Path) -> list[psutil.Process]:
    """The daemon, from its pid file (present only while it lives)."""
    try:
        pid_file = recorded(repo, RunPaths(repo).pid, "supervisor.pid")
        return [psutil.Process(int(pid_file.read_text().split()[0]))]
    except (OSError, ValueError, IndexError, psutil.Error):
        return []


def peer_supervisor(repo: Path) -> list[psutil.Process]:
    """The peer's `gsd-t-unattended.cjs` processes working in `repo`."""
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != "node":
            continue
        with contextlib.suppress(psutil.Error):
            script = any(arg.endswith("gsd-t-unattended.cjs") for arg in proc.cmdline())
            if script and proc.cwd() == str(repo):
                found.append(proc)
    return found


def tree_rss(roots: list[psutil.Process]) -> int:
    """RSS of `roots` and of their node descendants: the supervisor's own helpers, not the
    worker (the fake claude is sh + python)."""
    pids: dict[int, psutil.Process] = {}
    for root in roots:
        with contextlib.suppress(psutil.Error):
            pids[root.pid] = root
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.name() == "node" and "claude" not in " ".join(child.cmdline()):
                        pids[child.pid] = child
    total = 0
    for proc in pids.values():
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


@contextlib.contextmanager
def peak_rss(find: Callable[[], list[psutil.Process]], peaks: list[int]) -> Iterator[None]:
    """Sample `tree_rss(find())` every 50 ms while the block runs; appends the peak to `peaks`.
    `find` runs again every half second (the supervisor appears after launch)."""
    done = threading.Event()
    peak = [0]

    def sample() -> None:
        roots: list[psutil.Process] = []
        next_find = 0.0
        while not done.wait(0.05):
            if time.monotonic() >= next_find:
                roots, next_find = find(), time.monotonic() + 0.5
            peak[0] = max(peak[0], tree_rss(roots))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        peaks.append(peak[0])


def mib(values: list[int]) -> str:
    return f"{max(values) / 2**20:.0f} MiB" if values and max(values) else "not seen"


def bench_printing(base: Path, env: dict[str, str], args: argparse.Namespace,
                   script: Path | None) -> None:  # fmt: skip
    """Workers printing `--print-mib` MiB each: the gap and the supervisor's peak RSS."""
    scenario(env, printing(args.print_mib))
    repo = make_repo(base, env, "repo-print", 50)
    ours, theirs = [], []
    our_rss: list[int] = []
    their_rss: list[int] = []
    for _ in range(args.rounds):
        (base / "workers.log").unlink(missing_ok=True)
        with peak_rss(lambda: our_daemon(repo), our_rss):
            run_ours(env, [repo], args.iterations)
        ours += gaps(base, [repo])
        if script is not None:
            (base / "workers.log").unlink(missing_ok=True)  # the peer's workers only
            with peak_rss(lambda: peer_supervisor(repo), their_rss):
                run_peer(script, env, [repo], args.iterations)
            theirs += gaps(base, [repo])
    gap = f"gap, 50-file repo, workers printing {args.print_mib} MiB: unattended {ms(ours)}"
    rss = f"supervisor peak RSS, {args.print_mib} MiB per worker: unattended {mib(our_rss)}"
    if script is not None:
        gap += f"; peer {ms(theirs)}"
        rss += f"; peer {mib(their_rss)}"
    print(gap)
    print(rss)


def ms(values: list[float]) -> str:
    if not values:
        return "no gaps"
    return f"{statistics.median(values) * 1000:.1f} ms (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="*", default=[50, 20000])
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--daemons", type=int, default=10)
    parser.add_argument("--daemon-iterations", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--print-mib", type=int, default=50, help="MiB per worker; 0 skips")
    parser.add_argument("--code", type=Path, help="checkout of unattended to measure")
    parser.add_argument("--toml", action="append", default=[], help="a line for our toml")
    args = parser.parse_args()
    EXTRA_TOML.extend(args.toml)
    skip = peer.skip_reason()
    with tempfile.TemporaryDirectory(prefix="unattended-bench-") as tmp:
        base = Path(tmp)
        env = make_env(base, args.code)
        timed_claude(env, base)
        script = None if skip else peer.extract(base / "peer")
        note = f"; peer skipped ({skip})" if skip else ""
        load = os.getloadavg()[0]
        cpus = f"{os.cpu_count()} CPUs"
        print(f"python {sys.version.split()[0]}, {cpus}, load average {load:.2f}{note}")
        scenario(env, WORK)
        for files in args.files:
            ours_repo = peer_repo = make_repo(base, env, f"repo-{files}", files)  # in turn
            ours, theirs = [], []
            for _ in range(args.rounds):
                (base / "workers.log").unlink(missing_ok=True)
                run_ours(env, [ours_repo], args.iterations)
                ours += gaps(base, [ours_repo])
                if script is not None:
                    (base / "workers.log").unlink(missing_ok=True)  # the peer's workers only
                    run_peer(script, env, [peer_repo], args.iterations)
                    theirs += gaps(base, [peer_repo])
            line = f"gap, {files}-file repo: unattended {ms(ours)}"
            if script is not None:
                line += f"; peer {ms(theirs)}"
            print(line)
        if args.print_mib:
            bench_printing(base, env, args, script)
        if args.daemons:
            scenario(env, BUSY)
            for side in ("unattended", "peer"):
                if side == "peer" and script is None:
                    continue
                alone = make_repo(base, env, f"{side}-alone", 50)
                many = [make_repo(base, env, f"{side}-many{i}", 50) for i in range(args.daemons)]
                (base / "workers.log").unlink(missing_ok=True)
                n = args.daemon_iterations
                if side == "unattended":
                    run_ours(env, [alone], n)
                    run_ours(env, many, n)
                else:
                    assert script is not None
                    run_peer(script, env, [alone], n)
                    run_peer(script, env, many, n)
                one, all_busy = gaps(base, [alone]), gaps(base, many)
                ratio = statistics.median(all_busy) / statistics.median(one)
                print(f"gap per daemon, {side}: 1 daemon {ms(one)}; {args.daemons} daemons "
                      f"busy {ms(all_busy)}; ratio {ratio:.2f}")  # fmt: skip
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
