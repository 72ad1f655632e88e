"""Long-run figures for issue 13 item 13, printed (never asserted): the supervisor's own cost
per iteration and its RSS at iterations 10, 1,000 and 10,000.

    python benchmarks/bench_longrun.py [--iterations 10000]

Runs the real relay loop in-process with the test driver's fakes (tests/supervisor/run/
driver.py): a fake clock and instant scripted workers that each commit (so no gutter streak
ends the run), scripted git evidence. Everything else is real: state.json rewritten atomically
(with fsync) several times an iteration, run.log, events.jsonl, telemetry.jsonl, a raw log and
a worker settings file per iteration, the safety verdicts. So "overhead" is what the daemon
spends per iteration besides the worker and git; the flat line is what matters (it grew from
31 ms to 157 ms over 10,000 iterations when the rules re-judged the whole history).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.supervisor.run.driver import FakeClock, FakeWorker, LoopDriver, Turn  # noqa: E402
from unattended.supervisor.records.fsio import sys_calls  # noqa: E402

CHECKPOINTS = (10, 1_000, 10_000)
SAMPLE = 50  # iterations timed before each checkpoint (fewer before the first)


class LongRun(LoopDriver):
    """A driver that keeps nothing per worker (the figures are the loop's memory, not ours)."""

    def __post_init__(self) -> None:
        self.count = 0
        self.stamps: dict[int, float] = {}
        self.rss: dict[int, int] = {}
        self.proc = psutil.Process()
        self.checkpoints: tuple[int, ...] = ()
        super().__post_init__()

    def _spawn(self, spec, should_escalate):  # noqa: ANN001, ANN202
        self.count += 1
        n = self.count
        if any(c - SAMPLE <= n <= c + 1 for c in self.checkpoints):
            self.stamps[n] = time.perf_counter()
        if n - 1 in self.checkpoints:  # the worker after the checkpoint: its iteration is done
            self.rss[n - 1] = self.proc.memory_info().rss
        last = n > self.checkpoints[-1]
        turn = Turn(result_text="UNATTENDED_DONE") if last else Turn(progress=True)
        self.specs = [spec]  # FakeWorker numbers its pid from it; nothing accumulates
        return FakeWorker(self, spec, turn)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=CHECKPOINTS[-1])
    args = parser.parse_args()
    checkpoints = tuple(c for c in CHECKPOINTS if c <= args.iterations) or (args.iterations,)
    clock = FakeClock()
    sys_calls.time, sys_calls.monotonic = clock.time, clock.monotonic
    with tempfile.TemporaryDirectory(prefix="unattended-longrun-") as tmp:
        settings = {"max_iterations": checkpoints[-1] + 10, "hours": 10_000.0,
                    "max_launches_per_minute": 6}  # fmt: skip
        run = LongRun(Path(tmp), [], clock, settings)
        run.checkpoints = checkpoints
        started = time.perf_counter()
        code = run.run()
        total = time.perf_counter() - started
        print(f"{run.count - 1} instant iterations in {total:.1f} s (exit {int(code)}), "
              f"python {sys.version.split()[0]}")  # fmt: skip
        print("overhead per iteration: median and 10th percentile of the iterations before the")
        print("checkpoint (the floor is the steadier figure on a shared machine)")
        print(f"{'iteration':>10} {'median':>10} {'p10':>10} {'RSS':>11}")
        for n in checkpoints:
            gaps = sorted(run.stamps[i + 1] - run.stamps[i] for i in range(max(1, n - SAMPLE), n))
            median, floor = statistics.median(gaps) * 1000, gaps[len(gaps) // 10] * 1000
            rss = run.rss.get(n, 0) / 2**20
            print(f"{n:>10,} {median:>7.1f} ms {floor:>7.1f} ms {rss:>7.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
