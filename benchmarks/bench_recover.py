"""`unattended recover --list` after a 10,000-iteration run: `python benchmarks/bench_recover.py`.

The run's snapshots (a before and an after per iteration: 20,000 refs and commits) are written
with `git fast-import` in the daemon's layout, refs and commits packed as the daemon leaves them
(it packs both every 256 snapshots). `--loose` leaves refs and commits loose, as the daemon did
before. Median of 5 runs of the CLI. `--code DIR` measures another checkout of unattended.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_daemon import make_env  # noqa: E402


def fake_run(repo: Path, env: dict[str, str], iterations: int, loose: bool) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, env=env, capture_output=True, text=True
    ).stdout.strip()
    chunks, mark, epoch = [], 0, 1764000000
    for n in range(1, iterations + 1):
        for phase in ("before", "after"):
            mark += 1
            msg = (
                f"unattended snapshot: run R1, iteration {n}, {phase}\n\nUnattended-Run: R1\n"
                f"Unattended-Iteration: {n}\nUnattended-Phase: {phase}\n"
            ).encode()
            chunks.append(
                f"commit refs/unattended/R1/{n:04d}-{phase}\nmark :{mark}\n"
                f"committer unattended <unattended@localhost> {epoch + mark} +0000\n"
                f"data {len(msg)}\n".encode()
                + msg
                + f"from {head}\n\n".encode()
            )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, env=env, check=True,
                   input=b"".join(chunks))  # fmt: skip
    pack_dir = repo / ".git" / "objects" / "pack"
    for pack in pack_dir.glob("*.pack") if loose else ():  # as commit-tree writes them
        data = pack.read_bytes()
        for f in pack_dir.glob(pack.stem + ".*"):
            f.unlink()
        subprocess.run(["git", "unpack-objects", "-q"], cwd=repo, env=env, input=data, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--loose", action="store_true", help="refs and commits loose")
    parser.add_argument("--code", type=Path, help="checkout of unattended to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unattended-bench-") as tmp:
        base = Path(tmp)
        env = make_env(base, args.code)
        repo = base / "repo"
        repo.mkdir()
        for argv in (["init", "-q", "-b", "work"], ["commit", "-q", "--allow-empty", "-m", "r"]):
            subprocess.run(["git", *argv], cwd=repo, env=env, check=True)
        fake_run(repo, env, args.iterations, args.loose)
        if not args.loose:
            subprocess.run(["git", "pack-refs", "--all"], cwd=repo, env=env, check=True)
        times, lines = [], 0
        for _ in range(5):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "unattended", "recover", "--list"],
                cwd=repo, env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            times.append(time.perf_counter() - t0)
            lines = out.stdout.count("\n")
        layout = "loose refs and commits" if args.loose else "packed refs and commits"
        print(f"recover --list, {args.iterations:,} iterations ({lines:,} lines, {layout}): "
              f"median {statistics.median(times) * 1000:.0f} ms, "
              f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
