"""A recorded night: two runs of a project as the daemon leaves them on disk.

A real git repository with commits at fixed dates; ``.unattended/`` holds the current (last)
run, blocked after six iterations, and ``runs/20261122T010000Z/`` an earlier run that hit its
hours cap. Telemetry, state.json and run.log are written in the daemon's formats (through the
contracts models, so the fixture cannot drift from them).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from unattended.contracts.paths import RunPaths
from unattended.contracts.state import LastIteration, RunState
from unattended.contracts.telemetry import TelemetryLine

OLD_RUN = "20261122T010000Z"
RUN = "20261123T010000Z"
PROMPT = (
    "Make name matching Unicode-aware.\n"
    "- Normalise names before comparing.\n"
    "- Cover NFC and NFD in the tests.\n"
    "- Write a migration for existing rows.\n"
    "Commit each step.\n"
)
HANDOFF = (
    "# Handoff\n"
    "- Normalisation is done in src/names.py (NFC everywhere).\n"
    "- Next: scripts/migrate.py needs the staging database to run.\n"
)
BLOCKED = "the worker is blocked: needs the staging database password to run the migration"
QUESTION = "the worker ended by asking a question (nobody is there to answer); no change"
TIMEOUT = "worker timed out after 3600s"


@dataclass
class Iter:
    outcome: str
    duration_s: float
    commits: list[tuple[str, str]]  # (path, subject)
    cost: float
    tokens: tuple[int, int, int, int]  # input, output, cache write, cache read
    peak: int
    reason: str
    resumed: bool = False
    handed_off: bool = False
    exit_code: int | None = 0
    denials: list[str] = field(default_factory=list)
    usage_source: str = "result"


OLD_ITERS = [
    Iter(
        "progress",
        600,
        [("docs/cli.md", "docs: describe the CLI")],
        0.42,
        (900, 6000, 30000, 150000),
        82000,
        "1 new commit",
    ),
    Iter(
        "progress",
        900,
        [("src/parser.py", "parser: handle empty input")],
        0.61,
        (1100, 7000, 35000, 260000),
        110000,
        "1 new commit",
        resumed=True,
    ),
    Iter(
        "timeout",
        3600,
        [],
        1.10,
        (1500, 9000, 52000, 400000),
        158000,
        TIMEOUT,
        resumed=True,
        exit_code=None,
        usage_source="transcript",
    ),
]
ITERS = [
    Iter(
        "progress",
        300,
        [("tests/test_names.py", "tests: add failing case for unicode names")],
        0.52,
        (1200, 8000, 42000, 210000),
        92000,
        "1 new commit",
    ),
    Iter(
        "progress",
        420,
        [
            ("src/names.py", "names: normalise unicode before comparing"),
            ("tests/test_names.py", "names: cover NFC and NFD"),
        ],
        0.31,
        (800, 6500, 21000, 300000),
        146000,
        "2 new commits",
        resumed=True,
    ),
    Iter(
        "progress",
        260,
        [("docs/names.md", "names: document normalisation")],
        0.44,
        (700, 5000, 30000, 350000),
        176000,
        "1 new commit",
        resumed=True,
        handed_off=True,
    ),
    Iter(
        "timeout",
        3600,
        [],
        0.95,
        (2000, 12000, 60000, 500000),
        120000,
        TIMEOUT,
        exit_code=None,
        usage_source="transcript",
    ),
    Iter(
        "no-progress",
        180,
        [],
        0.12,
        (500, 1500, 9000, 40000),
        50000,
        QUESTION,
        denials=["Bash", "Bash"],
    ),
    Iter(
        "blocked",
        140,
        [("scripts/migrate.py", "names: stage migration script")],
        0.20,
        (600, 2500, 12000, 60000),
        61000,
        BLOCKED,
    ),
]
WINDOW = 200_000


def git(repo: Path, env: dict[str, str], *args: str, when: datetime | None = None) -> str:
    extra = {}
    if when is not None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
        extra = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**env, **extra},
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _commit(repo: Path, env: dict[str, str], path: str, subject: str, when: datetime) -> str:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a") as fh:
        fh.write(f"{subject}\n")
    git(repo, env, "add", path)
    git(repo, env, "commit", "-q", "-m", subject, when=when)
    return git(repo, env, "rev-parse", "HEAD")


def _band(pct: float) -> str:
    return "stop" if pct >= 85 else "warn" if pct >= 70 else "normal"


@dataclass
class RunFiles:
    run_id: str
    root: Path
    heads: list[str]  # HEAD before the run, then after each iteration
    commits: list[tuple[str, str]]  # (sha, subject), oldest first
    lines: list[TelemetryLine]
    log: list[str]


def _write_run(
    repo: Path,
    env: dict[str, str],
    root: Path,
    run_id: str,
    start: datetime,
    iters: list[Iter],
    model: str,
    final: tuple[str, str, int],
    settings: dict[str, Any],
) -> RunFiles:
    (root / "iterations").mkdir(parents=True, exist_ok=True)
    head = git(repo, env, "rev-parse", "HEAD")
    heads = [head]
    commits: list[tuple[str, str]] = []
    lines: list[TelemetryLine] = []
    log = [f"----- run {run_id} -----", f"{_iso(start)} new run {run_id}"]
    clock = start + timedelta(seconds=2)
    for number, it in enumerate(iters, 1):
        before = head
        log.append(
            f"{_iso(clock)} iter {number} worker started (pid {4000 + number}, "
            f"{'resuming session 1a2b3c4d' if it.resumed else 'fresh'} session)"
        )
        for k, (path, subject) in enumerate(it.commits):
            head = _commit(repo, env, path, subject, clock + timedelta(seconds=60 * (k + 1)))
            commits.append((head, subject))
        clock += timedelta(seconds=it.duration_s)
        heads.append(head)
        pct = round(100 * it.peak / WINDOW, 1)
        lines.append(
            TelemetryLine(
                time=clock,
                run_id=run_id,
                iteration=number,
                model=model,
                duration_s=it.duration_s,
                exit_code=it.exit_code,
                outcome=it.outcome,
                reason=it.reason,
                input_tokens=it.tokens[0],
                output_tokens=it.tokens[1],
                cache_creation_tokens=it.tokens[2],
                cache_read_tokens=it.tokens[3],
                total_cost_usd=it.cost,
                usage_source=it.usage_source,
                num_turns=12,
                tool_calls=20,
                context_peak_tokens=it.peak,
                context_window=WINDOW,
                context_pct=pct,
                context_band=_band(pct),
                head_before=before,
                head_after=head,
                commits=len(it.commits),
                files_changed=len({p for p, _ in it.commits}),
                handed_off=it.handed_off,
                resumed_session=it.resumed,
                session_policy="auto",
                permission_denials=it.denials,
                compactions=1 if it.peak >= 167_000 else 0,  # where a 200k window's CLI compacts
                cli_version="2.1.197",
            )
        )
        if it.handed_off:
            (root / "iterations" / f"{number:04d}.handoff.md").write_text(HANDOFF)
        (root / "iterations" / f"{number:04d}.jsonl").write_text(
            json.dumps({"type": "system", "subtype": "init", "session_id": "s"}) + "\n"
        )
        mins, secs = divmod(int(it.duration_s), 60)
        took = f"{mins}m{secs:02d}s" if mins < 60 else f"{mins // 60}h{mins % 60:02d}m"
        log.append(
            f"{_iso(clock)} iter {number} {it.outcome} in {took}, ${it.cost:.2f}: {it.reason}"
        )
        log.append(f"{_iso(clock)} Cycle {number} closed: {it.reason}")
        clock += timedelta(seconds=5)
    status, reason, code = final
    log.append(
        f"{_iso(clock)} run ended {status} (exit {code}) after {len(iters)} "
        f"iteration(s), ${sum(i.cost for i in iters):.2f}: {reason}"
    )
    (root / "telemetry.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in lines))
    last = iters[-1]
    state = RunState(
        run_id=run_id,
        status=status,
        pid=None,
        project=str(repo),
        started_at=start,
        updated_at=clock,
        deadline=start + timedelta(hours=settings["hours"]),
        iteration=len(iters),
        max_iterations=settings["max_iterations"],
        stop_reason=reason,
        exit_code=code,
        input_tokens=sum(i.tokens[0] for i in iters),
        output_tokens=sum(i.tokens[1] for i in iters),
        cache_creation_tokens=sum(i.tokens[2] for i in iters),
        cache_read_tokens=sum(i.tokens[3] for i in iters),
        cost_usd=round(sum(i.cost for i in iters), 6),
        last_iteration=LastIteration(
            number=len(iters),
            outcome=last.outcome,
            exit_code=last.exit_code,
            duration_s=last.duration_s,
            reason=last.reason,
        ),
        model=model,
        settings=settings,
    )
    (root / "state.json").write_text(state.to_json())
    return RunFiles(run_id, root, heads, commits, lines, log)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Recorded:
    project: Path
    old: RunFiles
    current: RunFiles
    initial: str


def build_recorded(repo: Path, env: dict[str, str]) -> Recorded:
    """``repo`` must be a fresh, empty directory; ``env`` a hermetic git environment."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, env, "init", "-q", "-b", "night-work")
    (repo / "README.md").write_text("names\n")
    (repo / "PROMPT.md").write_text(PROMPT)
    git(repo, env, "add", "README.md")
    git(repo, env, "commit", "-q", "-m", "initial", when=datetime(2026, 11, 21, 12, tzinfo=UTC))
    initial = git(repo, env, "rev-parse", "HEAD")
    state_dir = RunPaths(repo).records  # what the daemon keeps in the git dir
    (state_dir / "runs").mkdir(parents=True)
    old = _write_run(
        repo,
        env,
        state_dir / "runs" / OLD_RUN,
        OLD_RUN,
        datetime(2026, 11, 22, 1, tzinfo=UTC),
        OLD_ITERS,
        "claude-sonnet-4-6",
        ("capped", "hours cap reached (deadline 2026-11-22T03:00:00Z)", 3),
        {
            "hours": 2.0,
            "max_iterations": 50,
            "session_policy": "auto",
            "worker_timeout": 3600.0,
            "context_warn_pct": 70.0,
            "context_stop_pct": 85.0,
        },
    )
    current = _write_run(
        repo,
        env,
        state_dir,
        RUN,
        datetime(2026, 11, 23, 1, tzinfo=UTC),
        ITERS,
        "claude-opus-4-8",
        ("blocked", BLOCKED, 4),
        {
            "hours": 8.0,
            "max_iterations": 200,
            "max_cost_usd": 10.0,
            "session_policy": "auto",
            "worker_timeout": 3600.0,
            "context_warn_pct": 70.0,
            "context_stop_pct": 85.0,
        },
    )
    (state_dir / "run.log").write_text("\n".join([*old.log, *current.log]) + "\n")
    # The prompt file is older than both runs: the report must not call it edited.
    import os

    stamp = datetime(2026, 11, 21, 12, tzinfo=UTC).timestamp()
    os.utime(repo / "PROMPT.md", (stamp, stamp))
    return Recorded(repo, old, current, initial)
