"""`--help` and the API-count hook, timed as real processes (printed, never asserted).

Run `python benchmarks/bench_cli.py [--runs 10]`:

- `python -m unattended start --help`: median and minimum wall time of --runs invocations;
- the context-meter hook with `--context-source api` against a loopback fake of the count
  endpoint (tests/fakes/fake_api.py), through `python -m unattended hook context-meter` and
  through the `python -I -S` form the daemon writes into the worker's settings, and the default
  transcript mode for comparison.

Everything runs in a temp dir; nothing leaves the machine.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, input=stdin, capture_output=True, check=False, timeout=120)
    return time.perf_counter() - start


def show(name: str, times: list[float]) -> None:
    print(f"{name:<52} median {statistics.median(times) * 1000:6.0f} ms   "
          f"min {min(times) * 1000:6.0f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    from tests.fakes.fake_api import FakeAnthropic
    from tests.supervisor.hook.transcripts import Transcript
    from unattended.contracts.settings import Settings
    from unattended.supervisor.worker.settings_file import hook_command

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    py = sys.executable
    show("start --help", [timed([py, "-m", "unattended", "start", "--help"], env)
                          for _ in range(runs)])  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t = Transcript(Path(tmp) / "t.jsonl").user("Fix the tests.")
        for i in range(30):
            t.assistant(f"m{i}", input_tokens=1000 + i * 1000, blocks=2).tool_result("ok " * 50)
        payload = json.dumps({"session_id": "s", "transcript_path": str(t.write()),
                              "cwd": tmp, "hook_event_name": "PostToolUse"}).encode()  # fmt: skip
        with FakeAnthropic(count_tokens=50_000) as api:
            hook_env = {**env, "UNATTENDED_STATE_DIR": str(Path(tmp) / ".u"),
                        "UNATTENDED_CONTEXT_WINDOW": "200000", "ANTHROPIC_API_KEY": "dummy",
                        "ANTHROPIC_BASE_URL": api.base_url}  # fmt: skip
            module = [py, "-m", "unattended", "hook", "context-meter"]
            forms = {
                "hook, api mode (python -m unattended)": [*module, "--context-source", "api"],
                "hook, api mode (python -I -S, as workers run it)": hook_command(
                    Settings(context_source="api")
                ),
                "hook, transcript mode (python -I -S)": hook_command(Settings()),
            }
            for name, argv in forms.items():
                show(name, [timed(argv, hook_env, payload) for _ in range(runs)])
            counted = sum(1 for r in api.requests if "count_tokens" in r.path)
            print(f"count_tokens requests served: {counted}")


if __name__ == "__main__":
    main()
