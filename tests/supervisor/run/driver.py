"""Drive the relay loop in-process: a fake clock, scripted workers and scripted git evidence.

No daemon, no subprocess: the loop's seams (``supervisor.run.ports``) get fakes, the clock
advances only when the loop sleeps or a worker "runs", and each worker is a :class:`Turn`
saying what its stream held, how long it took and whether git moved. The loop writes its real
files (state.json, run.log, events.jsonl, telemetry, the raw logs) under ``tmp_path``.

    drv = loop_driver([Turn(progress=True), Turn(result_text="UNATTENDED_DONE")])
    assert drv.run() == ExitCode.DONE

(``loop_driver`` is the fixture in ``conftest.py``: it puts the fake clock behind ``sys_calls``.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unattended.contracts.exit_codes import ExitCode
from unattended.contracts.iteration import GitPoint
from unattended.contracts.paths import RunPaths
from unattended.contracts.settings import Settings
from unattended.contracts.state import RunState
from unattended.supervisor.records.runlog import RunLog
from unattended.supervisor.records.state import read_state, write_state
from unattended.supervisor.run.loop import RelayLoop, RunContext
from unattended.supervisor.run.prompt import PromptSource
from unattended.supervisor.run.signals import SignalFlags
from unattended.supervisor.worker.process import SpawnError, WorkerOutcome, WorkerSpec
from unattended.supervisor.worker.stream import StreamReader

T0 = 1_900_000_000.0  # 2030-03-17T17:46:40Z
MAX_RUN_S = 2 * 24 * 3600.0  # a scripted worker running longer was forgotten: fail, never hang


class DaemonKilled(BaseException):
    """Raised from a hook to stand for ``kill -9`` of the daemon: nothing in the loop catches
    it, so the files on disk are what a killed daemon leaves."""


class FakeClock:
    """Wall and monotonic time that move only when told (or when the loop sleeps)."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.mono = 10_000.0
        self.slept = 0.0
        self.on_sleep: Callable[[float], None] | None = None  # (seconds slept in all)

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)
        self.advance(seconds)
        if self.on_sleep is not None:
            self.on_sleep(self.slept)

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        self.mono += max(0.0, seconds)


# ----- scripted stream events ------------------------------------------------------------------


def result_event(
    text: str = "I changed a thing.",
    *,
    cost: float = 0.01,
    is_error: bool = False,
    subtype: str = "success",
    input_tokens: int = 1_000,
    output_tokens: int = 200,
    session_id: str = "sess-1",
    api_error_status: int | None = None,
    denials: Iterable[str] = (),
) -> dict[str, Any]:
    return {
        "type": "result",
        "subtype": subtype,
        "is_error": is_error,
        "api_error_status": api_error_status,
        "result": text,
        "num_turns": 3,
        "session_id": session_id,
        "total_cost_usd": cost,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        "permission_denials": [
            {"tool_name": t, "tool_use_id": f"t{i}", "tool_input": {}}
            for i, t in enumerate(denials)
        ],
    }


def init_event(session_id: str = "sess-1", model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    return {"type": "system", "subtype": "init", "session_id": session_id, "model": model}


def usage_limit_events(resets_at: float, limit_type: str = "five_hour") -> list[dict[str, Any]]:
    """A worker refused by the subscription's usage limit (rate_limit_event + error result)."""
    return [
        init_event(),
        {
            "type": "rate_limit_event",
            "rate_limit_info": {
                "status": "rejected",
                "resetsAt": resets_at,
                "rateLimitType": limit_type,
            },
        },
        result_event(
            "You've hit your limit", is_error=True, cost=0.0, input_tokens=0, output_tokens=0
        ),  # fmt: skip
    ]


@dataclass
class Turn:
    """One scripted worker: what its stream holds, how long it runs, what git shows after."""

    events: list[dict[str, Any]] | None = None  # default: init + a clean result
    result_text: str = "I changed a thing."
    cost: float = 0.01
    duration_s: float = 30.0
    exit_code: int = 0
    progress: bool = False  # git HEAD moves during this worker
    handoff: str | None = None  # written to .unattended/handoff.md before it ends
    spawn_error: str | None = None
    until_stopped: bool = False  # runs until the loop stops it (ignores duration_s)
    stderr: str | None = None
    done_when: bool | None = None  # the --done-when command's answer after this worker
    on_start: Callable[[LoopDriver], None] | None = None  # e.g. write the stop sentinel
    on_tick: Callable[[LoopDriver, float], None] | None = None  # (driver, seconds run so far)

    def stream(self) -> list[dict[str, Any]]:
        if self.events is not None:
            return self.events
        return [init_event(), result_event(self.result_text, cost=self.cost)]


class FakeWorker:
    """A WorkerHandle whose life is a :class:`Turn`; writes its raw log like the real one."""

    def __init__(self, driver: LoopDriver, spec: WorkerSpec, turn: Turn) -> None:
        self.driver, self.spec, self.turn = driver, spec, turn
        self.pid = 40_000 + len(driver.specs)
        self.ran_s = 0.0
        self.ended_by: str | None = None
        self._finished = False
        self._stopping = False
        self.stop_reasons: list[str] = []
        spec.stdout_path.write_text("")  # the raw log exists from the start, as for a real one

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def stopping(self) -> bool:
        return self._stopping

    def pump(self, timeout: float) -> None:
        if self.ran_s > MAX_RUN_S:
            raise AssertionError(f"worker {self.pid} was never ended (ran {self.ran_s:.0f}s)")
        left = self.turn.duration_s - self.ran_s
        step = timeout if self.turn.until_stopped else max(0.0, min(timeout, left))
        self.driver.clock.advance(step)
        self.ran_s += step
        if self.turn.on_tick is not None:
            self.turn.on_tick(self.driver, self.ran_s)
        if not self.turn.until_stopped and self.ran_s >= self.turn.duration_s:
            self._end(self.turn.exit_code, self.turn.stream())

    def stop(self, reason: str) -> None:
        if self._finished:
            return
        self.stop_reasons.append(reason)
        self._stopping = True
        self.ended_by = reason
        events = [e for e in self.turn.stream() if e.get("type") != "result"]
        self._end(-2, events)  # SIGINT before the result: the result line is lost

    def escalate(self) -> None:
        self.stop("stop")

    def _end(self, exit_code: int, events: list[dict[str, Any]]) -> None:
        self.exit_code = exit_code
        self.events = events
        with self.spec.stdout_path.open("a") as raw:
            for event in events:
                raw.write(json.dumps(event) + "\n")
        if self.turn.stderr:
            self.spec.stderr_path.write_text(self.turn.stderr + "\n")
        if self.turn.handoff is not None:
            self.driver.paths.handoff.write_text(self.turn.handoff)
        if self.turn.progress:
            self.driver.git.move_head()
        self._finished = True

    def seen_identities(self) -> list[tuple[int, float]]:
        return []  # a scripted worker has no processes

    def kill_now(self) -> None:
        """A scripted worker has no process to kill."""

    def record(self) -> WorkerOutcome:
        reader = StreamReader(clock=self.driver.clock.monotonic)
        reader.feed(self.spec.stdout_path.read_bytes())
        reader.finish()
        return WorkerOutcome(
            exit_code=self.exit_code,
            ended_by=self.ended_by,
            last_stderr_line=self.turn.stderr,
            stream=reader.facts,
        )


class ScriptedGit:
    """GitEvidence whose HEAD moves when a scripted worker makes progress."""

    def __init__(self) -> None:
        self.head = 1
        self.done_when_answers: list[bool | None] = []
        self.pruned_keep: list[set[str]] = []

    def move_head(self) -> None:
        self.head += 1

    def _point(self) -> GitPoint:
        return GitPoint(head=f"{self.head:040x}", tree=f"{self.head + 10_000:040x}")

    def point(self, number: int, phase: str, warn: Callable[[str], None]) -> GitPoint:
        return self._point()

    def commits(self, before: str | None, after: str | None) -> tuple[int, int]:
        return (0, 0) if before == after else (1, 1)

    def done_when(self, command: str, env: Any, abort: Any = None) -> bool:
        answer = self.done_when_answers.pop(0) if self.done_when_answers else None
        return bool(answer)

    def commit_subjects(self, before: str | None, after: str | None) -> list[tuple[str, str]]:
        return [] if before == after else [("0" * 40, "scripted commit")]

    def prune_snapshots(self, keep_run_ids: Any, only_run_ids: Any = ()) -> int:
        self.pruned_keep.append(set(keep_run_ids))
        return 0


class FakeSlots:
    """The worker-slot pool: free unless ``busy_for`` tries say otherwise."""

    def __init__(self, busy_for: int = 0) -> None:
        self.busy_for = busy_for
        self.tries = 0
        self.held = False
        self.last_error: str | None = None

    def try_acquire(self) -> bool:
        self.tries += 1
        if self.tries <= self.busy_for:
            return False
        self.held = True
        return True

    def release(self) -> None:
        self.held = False

    def stagger_delay(self, now: float, min_gap_s: float) -> float:
        return 0.0


@dataclass
class LoopDriver:
    """One run of the relay loop in ``tmp_path/project`` against ``turns``."""

    tmp_path: Path
    turns: list[Turn]
    clock: FakeClock  # also behind ``sys_calls`` (see the ``loop_driver`` fixture)
    settings: dict[str, Any] = field(default_factory=dict)
    busy_slots: int = 0
    resume: bool = False  # resume the crashed run on disk instead of beginning a new one

    def __post_init__(self) -> None:
        self.project = self.tmp_path / "project"
        self.project.mkdir(exist_ok=True)
        prompt = self.project / "PROMPT.md"
        if not prompt.exists():
            prompt.write_text("Do the task.\n")
        self.paths = RunPaths(self.project)
        self.git = ScriptedGit()
        self.slots = FakeSlots(self.busy_slots)
        self.specs: list[WorkerSpec] = []
        self.spawn_times: list[float] = []
        self.workers: list[FakeWorker] = []
        self.notifications: list[tuple[str, str]] = []
        self.loop = self._build()

    def _build(self) -> RelayLoop:
        from unattended.supervisor.run.begin import begin_run

        values = {"claude_bin": "claude", "hours": 24.0, **self.settings}
        settings = Settings(**values)
        self.start = begin_run(self.paths, settings, {}, resume=self.resume)
        self.state = self.start.state
        write_state(self.paths, self.state)  # as the daemon does before its first tick
        ctx = RunContext(
            project=self.project,
            paths=self.paths,
            git_dir=self.project / ".git",
            settings=settings,
            state=self.state,
            log=RunLog(self.paths.run_log, self.paths.events, self.state.run_id),
            prompt_source=PromptSource(text=None, file=self.project / "PROMPT.md"),
            environ={"HOME": str(self.tmp_path / "home"), "PATH": "/nonexistent"},
            resumed=self.start.resumed,
            crashed=self.start.crashed,
        )
        self.flags = SignalFlags()
        self.flags.child_exited = False  # no children to reap in-process
        return RelayLoop(
            ctx,
            self.flags,
            clock=self.clock,
            spawn=self._spawn,
            git=self.git,
            notify=self._notify,
            slots=self.slots,
        )

    def _spawn(self, spec: WorkerSpec, should_escalate: Callable[[], bool]) -> FakeWorker:
        del should_escalate
        self.specs.append(spec)
        self.spawn_times.append(self.clock.now)
        if len(self.specs) > len(self.turns):
            raise AssertionError(f"worker {len(self.specs)} was launched but not scripted")
        turn = self.turns[len(self.specs) - 1]
        if turn.spawn_error:
            raise SpawnError(turn.spawn_error)
        if turn.done_when is not None:
            self.git.done_when_answers.append(turn.done_when)
        worker = FakeWorker(self, spec, turn)
        self.workers.append(worker)
        if turn.on_start is not None:
            turn.on_start(self)
        return worker

    def _notify(self, event: Any, command: str | None, warn: Callable[[str], None]) -> None:
        self.notifications.append((event.status, event.reason))

    # ----- running and reading back -----------------------------------------------------
    def run(self) -> ExitCode:
        try:
            return self.loop.run()
        finally:
            self.loop.ctx.log.close()

    @property
    def launched(self) -> int:
        return len(self.specs)

    def prompt(self, n: int) -> str:
        """The prompt worker ``n`` (1-based) was given (on its stdin, never in its argv)."""
        prompt = self.specs[n - 1].prompt
        assert prompt is not None and prompt not in self.specs[n - 1].argv
        return prompt

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        lines = self.paths.events.read_text().splitlines() if self.paths.events.exists() else []
        found = [json.loads(line) for line in lines]
        return [e for e in found if kind is None or e.get("kind") == kind]

    def messages(self, kind: str | None = None) -> list[str]:
        return [e.get("message", "") for e in self.events(kind)]

    def saved_state(self) -> RunState:
        state = read_state(self.paths)
        assert state is not None
        return state
