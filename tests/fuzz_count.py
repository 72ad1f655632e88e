"""Run the commands that read a file against damaged versions of it, in this process, and count
the crashes (an exception escaping the command: what a user sees as a traceback).

    python -m tests.fuzz_count [--cases N] [--only FILE]

prints one line per file: cases run, crashes, and the first few crash kinds. The fuzz tests
(tests/contracts/test_fuzz_parsers.py, tests/supervisor/cli/test_fuzz_files.py) use the same
cases through hypothesis; this counter is how the issue's before/after figures are measured.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from tests import fuzzing as fz

Writer = Callable[[Path, Path, random.Random], None]  # (project, home, rng)


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo.parent / "home"),
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


_TEMPLATES: dict[Path, Path] = {}


def fresh_project(root: Path, work: Path) -> tuple[Path, Path]:
    """make_project's result in ``work``, copied from one template per ``root`` (git is slow)."""
    template = _TEMPLATES.get(root)
    if template is None or not template.exists():
        template = Path(tempfile.mkdtemp(dir=root, prefix="template-"))
        make_project(template)
        _TEMPLATES[root] = template
    shutil.copytree(template, work, symlinks=True, dirs_exist_ok=True)
    return work / "project", work / "home"


def make_project(root: Path) -> tuple[Path, Path]:
    """(project, home): a git repo on branch `work` with one commit and a PROMPT.md."""
    project, home = root / "project", root / "home"
    home.mkdir(parents=True)
    project.mkdir()
    _git(project, "init", "-q", "-b", "work")
    (project / "README.md").write_text("hello\n")
    _git(project, "add", "README.md")
    _git(project, "commit", "-q", "-m", "initial")
    (project / "PROMPT.md").write_text("Fix the tests.\n")
    (project / ".unattended").mkdir(mode=0o700)
    from unattended.contracts.paths import RunPaths

    RunPaths(project).records.mkdir(mode=0o700)  # the git dir's .unattended: state, budget...
    return project, home


def env_for(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "UNATTENDED_CLAUDE_BIN": str(home / "no-claude"),  # never spawn a real claude
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }


# ----- writers: one damaged file in place ---------------------------------------------------


def _state(project: Path, home: Path, rng: random.Random) -> None:
    text = fz.valid_state(str(project), rng.choice(["running", "done", "waiting"]))
    (project / ".unattended" / "state.json").write_bytes(fz.mutate_json(text, rng))


def _archived_state(project: Path, home: Path, rng: random.Random) -> None:
    run = project / ".unattended" / "runs" / "20261101T000000Z"
    run.mkdir(parents=True, exist_ok=True)
    (run / "state.json").write_bytes(fz.mutate_json(fz.valid_state(str(project), "done"), rng))
    (run / "telemetry.jsonl").write_text("\n".join(fz.valid_telemetry()) + "\n")


def _telemetry(project: Path, home: Path, rng: random.Random) -> None:
    root = project / ".unattended"
    (root / "state.json").write_text(fz.valid_state(str(project), "done"))
    (root / "telemetry.jsonl").write_bytes(fz.mutate_jsonl(fz.valid_telemetry(), rng))


def _budget(project: Path, home: Path, rng: random.Random) -> None:
    (project / ".unattended" / "budget.json").write_bytes(fz.mutate_json(fz.valid_budget(), rng))


def _control(project: Path, home: Path, rng: random.Random) -> None:
    root = project / ".unattended"
    # A run that looks alive (this process), so `extend` goes as far as reading control.json.
    import psutil

    state = fz.valid_state(str(project)).replace(str(fz.DEAD_PID), str(os.getpid()), 1)
    create = psutil.Process().create_time()
    (root / "state.json").write_text(
        state.replace('"pid_create_time": 1.0', f'"pid_create_time": {create}')
    )
    (root / "control.json").write_bytes(fz.mutate_json(fz.valid_control(), rng))


def _project_toml(project: Path, home: Path, rng: random.Random) -> None:
    (project / "unattended.toml").write_bytes(fz.mutate_toml(fz.VALID_TOML, rng))


def _user_toml(project: Path, home: Path, rng: random.Random) -> None:
    path = home / ".config" / "unattended" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fz.mutate_toml(fz.VALID_TOML, rng))


def _registry(project: Path, home: Path, rng: random.Random) -> None:
    daemons = home / ".local" / "state" / "unattended" / "daemons"
    daemons.mkdir(parents=True, exist_ok=True)
    (daemons / f"{fz.DEAD_PID}.json").write_bytes(
        fz.mutate_json(fz.valid_registry(str(project)), rng)
    )
    (project / ".unattended" / "state.json").write_text(fz.valid_state(str(project)))


P = "{project}"
OUT = "{out}"


@dataclass(frozen=True)
class FileCase:
    name: str
    write: Writer
    commands: list[list[str]]
    begin_run: bool = False  # also start a new run over it (what the daemon does at start)


STATE_COMMANDS = [
    ["status", "--project", P],
    ["status", "--project", P, "--json"],
    ["stop", "--project", P],
    ["extend", "--project", P, "--hours", "2"],
    ["report", "--project", P, "--out", OUT],
    ["metrics", "--project", P],
    ["metrics", "--project", P, "--json", "--halts"],
    ["watch", "--project", P],
    ["advise", "--project", P],
    ["ps"],
    ["start", "--project", P, "--dry-run"],
    ["start", "--project", P, "--resume", "--dry-run"],
    ["doctor", "--project", P],
]
FILES = [
    FileCase("state.json", _state, STATE_COMMANDS, begin_run=True),
    FileCase(
        "runs/<id>/state.json",
        _archived_state,
        [
            ["metrics", "--project", P, "--by", "run"],
            ["report", "--project", P, "--out", OUT, "--run", "20261101T000000Z"],
            ["advise", "--project", P],
        ],
    ),
    FileCase(
        "telemetry.jsonl",
        _telemetry,
        [
            ["status", "--project", P],
            ["metrics", "--project", P],
            ["metrics", "--project", P, "--by", "model"],
            ["metrics", "--project", P, "--by", "day", "--json"],
            ["metrics", "--project", P, "--context"],
            ["metrics", "--project", P, "--halts"],
            ["report", "--project", P, "--out", OUT],
            ["advise", "--project", P, "--json"],
            ["watch", "--project", P],
        ],
    ),
    FileCase(
        "budget.json",
        _budget,
        [
            ["budget", "check", "10", "--project", P],
            ["budget", "report", "--project", P],
            ["budget", "report", "--project", P, "--json"],
            ["budget", "reserve", "10", "--project", P, "--label", "a"],
            ["budget", "record", "10", "--project", P, "--label", "a"],
            ["budget", "reset", "--project", P],
            ["budget", "init", "--project", P, "--budget", "1000"],
        ],
    ),
    FileCase("control.json", _control, [["extend", "--project", P, "--hours", "30"]]),
    FileCase(
        "unattended.toml",
        _project_toml,
        [
            ["start", "--project", P, "--dry-run"],
            ["advise", "--project", P],
            ["status", "--project", P],
            ["doctor", "--project", P],
        ],
    ),
    FileCase(
        "user config.toml",
        _user_toml,
        [
            ["start", "--project", P, "--dry-run"],
            ["advise", "--project", P],
            ["doctor", "--project", P],
        ],
    ),
    FileCase("registry <pid>.json", _registry, [["ps"], ["ps", "--json"], ["stop", "--all"]]),
]


# ----- running one command in this process --------------------------------------------------


@dataclass
class Outcome:
    code: int | None
    out: str
    err: str
    crash: BaseException | None = None


_registered = False


def run_command(args: list[str], env: dict[str, str]) -> Outcome:
    """The command as `unattended ARGS` runs it, minus the interpreter start-up."""
    global _registered
    from unattended.supervisor.cli import app as app_mod
    from unattended.supervisor.cli import entry

    if not _registered:
        app_mod._register_commands([])
        _registered = True
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    crash: BaseException | None = None
    with (
        mock.patch.dict(os.environ, env),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        mock.patch("unattended.supervisor.cli.extend.APPLY_WAIT_S", 0.0),
    ):
        try:
            if args[0] == "status":
                code = entry._status_fast_path(args[1:])
            if code is None:
                app_mod.app(args=args, prog_name="unattended", standalone_mode=True)
                code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except (KeyboardInterrupt, MemoryError):
            raise
        except BaseException as exc:  # noqa: BLE001 - a crash is what we count
            crash = exc
    return Outcome(code, out.getvalue(), err.getvalue(), crash)


def begin_run_over(project: Path) -> BaseException | None:
    """What the daemon does first at `start`: a new run over whatever state is there."""
    from unattended.contracts.paths import RunPaths
    from unattended.contracts.settings import Settings
    from unattended.contracts.state import StateFileError
    from unattended.supervisor.run.begin import begin_run

    try:
        begin_run(RunPaths(project), Settings(), {}, resume=False)
    except StateFileError:
        return None
    except BaseException as exc:  # noqa: BLE001
        return exc
    return None


@dataclass
class Tally:
    cases: int = 0
    crashes: int = 0
    kinds: Counter = field(default_factory=Counter)


def crashes_for(case: FileCase, rng: random.Random, root: Path) -> list[str]:
    """Every crash (``command: ExceptionType: message``) of the case's commands on one file."""
    found = []
    for args in case.commands:
        work = Path(tempfile.mkdtemp(dir=root))
        try:
            project, home = fresh_project(root, work)
            case.write(project, home, random.Random(rng.random()))
            argv = [a.format(project=project, out=work / "report") for a in args]
            result = run_command(argv, env_for(home))
            if result.crash is not None:
                exc = result.crash
                found.append(f"{' '.join(args[:2])}: {type(exc).__name__}: {str(exc)[:80]}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if case.begin_run:
        work = Path(tempfile.mkdtemp(dir=root))
        try:
            project, home = fresh_project(root, work)
            case.write(project, home, random.Random(rng.random()))
            with mock.patch.dict(os.environ, env_for(home)):
                exc = begin_run_over(project)
            if exc is not None:
                found.append(f"start (begin_run): {type(exc).__name__}: {str(exc)[:80]}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return found


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=20, help="damaged files per file kind")
    parser.add_argument("--only", default=None)
    opts = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="fuzz-count-"))
    total_runs = total_crashes = 0
    try:
        for case in FILES:
            if opts.only and opts.only != case.name:
                continue
            tally = Tally()
            for seed in range(opts.cases):
                found = crashes_for(case, random.Random(seed), root)
                runs = len(case.commands) + case.begin_run
                tally.cases += runs
                tally.crashes += len(found)
                tally.kinds.update(f.split(": ", 2)[0] + ": " + f.split(": ", 2)[1] for f in found)
            total_runs += tally.cases
            total_crashes += tally.crashes
            kinds = ", ".join(f"{k} ×{n}" for k, n in tally.kinds.most_common(6))
            print(f"{case.name}: {tally.cases} command runs, {tally.crashes} crashes  {kinds}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"total: {total_runs} command runs, {total_crashes} crashes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
