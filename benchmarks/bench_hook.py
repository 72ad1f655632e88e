"""Context-meter and estimator figures for issue 6, printed (never asserted).

Run `python benchmarks/bench_hook.py [--runs 200] [--mb 5]`.

- hook latency: wall time of real hook processes, in the three forms (`python -m supervisor
  hook context-meter`, the `unattended` script, and `worker_settings.hook_command()`'s
  `python -I -S .../hook_script.py`), fed a PostToolUse payload for a realistic transcript of
  about --mb MB (text, multi-block tool_use messages written once per block, tool results of
  1-30 KB, a subagent sidechain, one compaction), P50/P99/max over --runs invocations; the same
  through the `unattended` console script when installed; `python -c pass` as the floor;
- in-process tail read (`latest_context`) on that transcript, and on one whose newest
  assistant line sits behind a 2 MB tool result (the tail has to grow);
- `safety.runway.estimate_next` time with 200 iterations of history and 1,000 earlier ones;
- side by side with the peer (GSD-T 3.29.11's PostToolUse context meter, when `node` and its
  tarball are present), on a transcript of `--lines` lines (5,000; 0 skips), each hook run as
  Claude Code runs one (`/bin/sh -c COMMAND` in the project, the payload on stdin), interleaved,
  `--side-runs` calls each: the command our daemon installs; the peer's script under `node`, and
  the command its installer writes (`bash -c` with two `npm root -g`, when `npm` is present).

Everything runs in a temp dir; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import peer  # noqa: E402


def _line(kind: str, n: int, **extra: object) -> str:
    base = {
        "parentUuid": f"u{n - 1}",
        "isSidechain": False,
        "userType": "external",
        "cwd": "/work/project",
        "sessionId": "bench-session",
        "version": "2.1.197",
        "gitBranch": "work",
        "entrypoint": "sdk-cli",
        "type": kind,
        "uuid": f"u{n}",
        "timestamp": "2026-11-23T03:12:09.000Z",
    }
    base.update(extra)
    return json.dumps(base, separators=(",", ":"))


def _assistant(n: int, msg: int, context: int, block: dict, sidechain: bool = False) -> str:
    usage = {
        "input_tokens": 12,
        "cache_creation_input_tokens": context // 10,
        "cache_read_input_tokens": context - context // 10 - 12,
        "output_tokens": 350,
        "service_tier": "standard",
    }
    message = {
        "id": f"msg_{msg:08d}",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-8",
        "content": [block],
        "stop_reason": "tool_use",
        "usage": usage,
    }
    return _line("assistant", n, message=message, requestId=f"req_{msg}", isSidechain=sidechain)


def make_transcript(path: Path, mb: float, tail_result_kb: int = 0, line_count: int = 0) -> int:
    """Write a transcript of about ``mb`` MB (or of ``line_count`` lines, when given); returns
    the final context tokens."""
    rng = random.Random(6)
    target = int(mb * 1024 * 1024)
    lines = [_line("user", 0, message={"role": "user", "content": "Fix the failing tests."})]
    size, n, msg, context = 0, 1, 0, 20_000
    compacted = False

    def full() -> bool:
        return len(lines) >= line_count if line_count else size >= target

    def halfway() -> bool:
        return len(lines) > line_count // 2 if line_count else size > target // 2

    while not full():
        before = len(lines)
        msg += 1
        context += rng.randint(500, 4_000)
        if not compacted and halfway():
            meta = {"trigger": "auto", "preTokens": context}
            lines.append(_line("system", n, subtype="compact_boundary",
                               content="Conversation compacted", compactMetadata=meta))  # fmt: skip
            context, compacted = 30_000, True
            n += 1
        text = {"type": "text", "text": "Let me look at that. " * rng.randint(1, 20)}
        tool = {"type": "tool_use", "id": f"toolu_{msg}", "name": "Bash",
                "input": {"command": "pytest -q tests/", "description": "Run tests"}}  # fmt: skip
        for block in (text, tool):
            lines.append(_assistant(n, msg, context, block))
            n += 1
        if msg % 25 == 0:  # a subagent's sidechain
            lines.append(_assistant(n, 10_000_000 + msg, 9_000, text, sidechain=True))
            n += 1
        result = "x" * rng.randint(1_000, 30_000)
        lines.append(_line("user", n, message={"role": "user", "content": [
            {"tool_use_id": f"toolu_{msg}", "type": "tool_result", "content": result}]},
            toolUseResult={"stdout": result, "stderr": "", "interrupted": False}))  # fmt: skip
        n += 1
        size += sum(len(line) + 1 for line in lines[before:])
    if tail_result_kb:
        big = "y" * (tail_result_kb * 1024)
        lines.append(_line("user", n, message={"role": "user", "content": [
            {"tool_use_id": "toolu_big", "type": "tool_result", "content": big}]}))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return context


CPU_MS: dict[str, list[float]] = {}


def time_processes(
    argv: list[str],
    payload: bytes,
    env: dict[str, str],
    runs: int,
    name: str = "",
    cwd: Path | None = None,
) -> list[float]:
    """Wall milliseconds per run; the child's user+sys CPU goes to CPU_MS[name] (CPU time is
    far less sensitive than wall time to other jobs on a shared machine)."""
    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            argv, input=payload, env=env, cwd=cwd, capture_output=True, check=False
        )
        times.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        CPU_MS.setdefault(name, []).append(cpu * 1000)
        if proc.returncode != 0:
            raise SystemExit(f"hook failed: {proc.stderr.decode()}")
    return times


def show(name: str, times: list[float]) -> None:
    from unattended.safety.runway import percentile

    cpu = CPU_MS.get(name)
    cpu_text = f"   CPU P50 {statistics.median(cpu):5.1f} ms" if cpu else ""
    print(
        f"{name:<48} P50 {statistics.median(times):6.1f} ms   P99 {percentile(times, 99):6.1f} ms"
        f"   max {max(times):6.1f} ms{cpu_text}   (n={len(times)})"
    )


def hook_env(state: Path) -> dict[str, str]:
    """The environment our daemon gives its worker, which the CLI passes on to the hook."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "UNATTENDED_STATE_DIR": str(state),
        "UNATTENDED_CONTEXT_WINDOW": "200000",
        "UNATTENDED_CONTEXT_WARN_PCT": "70",
        "UNATTENDED_CONTEXT_STOP_PCT": "85",
    }


def hook_payload(transcript: Path, cwd: Path) -> bytes:
    """A PostToolUse payload for the newest tool call, whose message the transcript holds."""
    last_tool = re.findall(r'"id":\s*"(toolu_\d+)"', transcript.read_text())[-1]
    return json.dumps({
        "session_id": "bench-session", "transcript_path": str(transcript), "cwd": str(cwd),
        "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_input": {"command": "pytest -q"}, "tool_use_id": last_tool,
        "tool_response": {"stdout": "z" * 20_000, "stderr": "", "interrupted": False},
    }).encode()  # fmt: skip


def bench_hook(base: Path, runs: int, mb: float) -> None:
    from unattended.contracts.settings import Settings
    from unattended.supervisor.hook.transcript_tail import latest_context
    from unattended.supervisor.worker.settings_file import hook_command

    transcript = base / "transcript.jsonl"
    context = make_transcript(transcript, mb)
    state = base / ".unattended"
    env = hook_env(state)
    payload = hook_payload(transcript, base)
    size_mb = transcript.stat().st_size / 1024 / 1024
    print(f"transcript: {size_mb:.1f} MB, final context {context:,} tokens, {os.cpu_count()} CPUs")
    forms: list[tuple[str, list[str], bytes]] = [
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"], b""),
        ("python -I -S -c pass (floor without site)", [sys.executable, "-I", "-S", "-c", "pass"],
         b""),
        ("python -m supervisor hook context-meter",
         [sys.executable, "-m", "unattended", "hook", "context-meter"], payload),
        ("python -I -S .../hook_script.py (hook_command)", hook_command(Settings()), payload),
    ]  # fmt: skip
    script = shutil.which("unattended", path=str(Path(sys.executable).parent))
    if script:
        forms.append(("unattended hook context-meter", [script, "hook", "context-meter"], payload))
    # Round-robin, so a burst of load on this shared machine hits every form alike.
    times: dict[str, list[float]] = {name: [] for name, _, _ in forms}
    for _ in range(runs):
        for name, argv, stdin in forms:
            times[name] += time_processes(argv, stdin, env, 1, name)
    for name, _, _ in forms:
        show(name, times[name])
    meter = json.loads((state / "context-meter.json").read_text())
    last = meter["last_reading"]
    print(f"meter: {meter['readings']} readings, {meter['failures']} failures, "
          f"last {last['tokens']:,} tokens ({last['band']})")  # fmt: skip

    inproc = []
    for _ in range(runs):
        start = time.perf_counter()
        latest_context(str(transcript))
        inproc.append((time.perf_counter() - start) * 1000)
    show("latest_context() in process", inproc)
    grown = base / "grown.jsonl"
    make_transcript(grown, mb, tail_result_kb=2048)
    inproc = []
    for _ in range(max(20, runs // 4)):
        start = time.perf_counter()
        latest_context(str(grown))
        inproc.append((time.perf_counter() - start) * 1000)
    show("latest_context() behind a 2 MB tool result", inproc)


def bench_side_by_side(base: Path, line_count: int, runs: int) -> None:
    """Our hook and the peer's on one transcript, each as Claude Code runs a hook command."""
    from unattended.contracts.settings import Settings
    from unattended.supervisor.worker.settings_file import hook_command

    base.mkdir()
    transcript = base / "side.jsonl"
    make_transcript(transcript, 0, line_count=line_count)
    size_mb = transcript.stat().st_size / 1024 / 1024
    print(f"side by side: a {line_count:,}-line transcript ({size_mb:.1f} MB)")
    # name, command, project dir (the hook's cwd), extra env
    forms: list[tuple[str, str, Path, dict[str, str]]] = [
        ("unattended: the hook our daemon installs", shlex.join(hook_command(Settings())),
         base / "ours", {}),
    ]  # fmt: skip
    skip = peer.skip_reason()
    peer_forms: list[str] = []
    if skip:
        print(f"peer skipped ({skip})")
    else:
        script = peer.extract(base / "peer")
        meter = shlex.quote(str(peer.context_meter(script)))
        forms.append(("node -e 0 (node floor)", "node -e 0", base / "node", {}))
        forms.append(("peer: node scripts/gsd-t-context-meter.js", f"node {meter}",
                      base / "peer-node", {}))  # fmt: skip
        peer_forms.append(forms[-1][0])
        installed = peer.installed_hook(script, base / "npm-global")
        if installed is None:
            print("peer: the command its installer writes skipped (no npm on PATH)")
        else:
            command, extra = installed
            forms.append(("peer: the command its installer writes", command,
                          base / "peer-installed", extra))  # fmt: skip
            peer_forms.append(forms[-1][0])
    times: dict[str, list[float]] = {name: [] for name, *_ in forms}
    parsing: dict[str, list[float]] = {name: [] for name in peer_forms}
    for _ in range(runs):  # round-robin, as in bench_hook
        for name, command, project, extra in forms:
            project.mkdir(exist_ok=True)
            env = {**hook_env(project / ".unattended"), "CLAUDE_PROJECT_DIR": str(project), **extra}
            payload = hook_payload(transcript, project)
            before = peer.meter_state(project).get("timestamp")
            times[name] += time_processes(["/bin/sh", "-c", command], payload, env, 1, name,
                                          cwd=project)  # fmt: skip
            if name in parsing and peer.meter_state(project).get("timestamp") != before:
                parsing[name].append(times[name][-1])  # a measuring call, not a counting one
    for name, _, project, _ in forms:
        show(name, times[name])
        ours = project / ".unattended" / "context-meter.json"
        if ours.is_file():
            meter = json.loads(ours.read_text())
            print(f"  its meter: {meter['readings']} readings, {meter['failures']} failures, "
                  f"last {meter['last_reading']['tokens']:,} tokens")  # fmt: skip
        if name in parsing:
            state = peer.meter_state(project)
            if parsing[name]:
                show("  its calls that parsed the transcript", parsing[name])
            print(f"  its state: {state.get('checkCount')} calls, inputTokens "
                  f"{state.get('inputTokens')}, lastError {state.get('lastError')}")  # fmt: skip


def bench_estimator() -> None:
    from unattended.contracts.iteration import IterationRecord
    from unattended.safety.runway import estimate_next

    rng = random.Random(7)
    now = datetime.now(UTC)

    def record(i: int) -> IterationRecord:
        return IterationRecord(
            number=i, started_at=now, ended_at=now, duration_s=rng.uniform(30, 900),
            input_tokens=rng.randint(1_000, 90_000), output_tokens=rng.randint(100, 9_000),
            cost_usd=rng.uniform(0.01, 2.0),
        )  # fmt: skip

    history = [record(i) for i in range(1, 201)]
    earlier = [record(i) for i in range(1, 1001)]
    for label, args in (
        ("estimate_next, 200 iterations of this run", (history, earlier)),
        ("estimate_next, earlier runs only (1,000)", ([], earlier)),
        ("estimate_next, no history", ([], [])),
    ):
        n = 2_000
        start = time.perf_counter()
        for _ in range(n):
            estimate_next(*args)
        per_call_us = (time.perf_counter() - start) / n * 1e6
        print(f"{label:<48} {per_call_us:8.1f} µs per call (target < 10 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--mb", type=float, default=5.0)
    parser.add_argument("--lines", type=int, default=5000, help="side by side; 0 skips")
    parser.add_argument("--side-runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hook-") as tmp:
        bench_hook(Path(tmp), args.runs, args.mb)
        if args.lines:
            bench_side_by_side(Path(tmp) / "side", args.lines, args.side_runs)
    bench_estimator()


if __name__ == "__main__":
    main()
