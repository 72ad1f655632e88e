"""The per-user worker slot pool and start stagger, across real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from unattended.supervisor.run.slots import WorkerSlots

# A process holding a WorkerSlots, driven by lines on stdin: "acquire", "release",
# "stagger NOW GAP"; it answers one line per command.
DRIVER = """
import sys
from pathlib import Path
from unattended.supervisor.run.slots import WorkerSlots
limit = None if sys.argv[1] == "none" else int(sys.argv[1])
slots = WorkerSlots(limit, Path(sys.argv[2]))
print("ready", flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "acquire":
        print("yes" if slots.try_acquire() else "no", flush=True)
    elif cmd == "release":
        slots.release()
        print("released", flush=True)
    elif cmd == "stagger":
        print(f"{slots.stagger_delay(float(args[0]), float(args[1])):.3f}", flush=True)
"""


class Driver:
    def __init__(self, limit: int | None, state_dir: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, "none" if limit is None else str(limit), str(state_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.ask(None) == "ready"

    def ask(self, command: str | None) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def drivers(private_state_home: Path, hermetic_env: dict[str, str]) -> Iterator:
    made: list[Driver] = []

    def start(limit: int | None) -> Driver:
        made.append(Driver(limit, private_state_home, hermetic_env))
        return made[-1]

    yield start
    for driver in made:
        driver.close()


def test_limit_1_second_process_waits_for_the_first(drivers) -> None:  # noqa: ANN001
    first, second = drivers(1), drivers(1)
    assert first.ask("acquire") == "yes"
    assert first.ask("acquire") == "yes"  # idempotent while held
    assert second.ask("acquire") == "no"
    assert second.ask("acquire") == "no"
    assert first.ask("release") == "released"
    assert second.ask("acquire") == "yes"
    assert first.ask("acquire") == "no"


def test_a_killed_holder_frees_its_slot(drivers) -> None:  # noqa: ANN001
    first, second = drivers(1), drivers(1)
    assert first.ask("acquire") == "yes"
    assert second.ask("acquire") == "no"
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait()
    assert second.ask("acquire") == "yes"


def test_limit_2_and_mixed_limits_count_every_worker(drivers, private_state_home: Path) -> None:  # noqa: ANN001
    unlimited, a, b = drivers(None), drivers(2), drivers(2)
    assert unlimited.ask("acquire") == "yes"  # unlimited daemons hold a slot too: they count
    assert a.ask("acquire") == "yes"
    assert b.ask("acquire") == "no"  # 2 workers already run
    assert unlimited.ask("acquire") == "yes"
    assert unlimited.ask("release") == "released"
    assert b.ask("acquire") == "yes"
    assert drivers(None).ask("acquire") == "yes"  # no limit of its own: never refused
    slot_files = sorted(p.name for p in (private_state_home / "slots").glob("slot-*.lock"))
    assert slot_files == ["slot-0.lock", "slot-1.lock", "slot-2.lock"]


def test_in_process_holder_and_fd_not_inherited(private_state_home: Path) -> None:
    slots = WorkerSlots(1, private_state_home)
    assert slots.try_acquire() and slots.held
    assert slots.fd is not None and not os.get_inheritable(slots.fd)
    # Even a child started with close_fds=False does not get the slot's fd across exec.
    fds = subprocess.run(
        ["sh", "-c", "ls /proc/$$/fd"], close_fds=False, capture_output=True, text=True
    ).stdout.split()
    assert str(slots.fd) not in fds
    other = WorkerSlots(1, private_state_home)
    assert not other.try_acquire() and other.in_use == 1
    slots.release()
    slots.release()  # idempotent
    assert other.try_acquire()
    other.release()


def test_unusable_state_dir_fails_open(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    slots = WorkerSlots(1, blocker)
    assert slots.try_acquire() is True
    assert slots.last_error and "unusable" in slots.last_error
    assert slots.stagger_delay(1000.0) == 0.0


def test_stagger_spaces_starts_of_different_daemons(drivers, private_state_home: Path) -> None:  # noqa: ANN001
    now = 1_900_000_000.0
    a, b, c = drivers(None), drivers(None), drivers(None)
    assert float(a.ask(f"stagger {now} 3")) == 0.0
    assert float(b.ask(f"stagger {now} 3")) == 3.0
    assert float(c.ask(f"stagger {now + 1} 3")) == 5.0  # after b's reserved start (now + 3)
    assert float(a.ask(f"stagger {now + 7} 3")) == 2.0  # after c's (now + 6)
    # A daemon's own consecutive starts are not delayed by its own reservation ...
    assert float(a.ask(f"stagger {now + 20} 3")) == 0.0
    assert float(a.ask(f"stagger {now + 21} 3")) == 0.0
    assert float(b.ask(f"stagger {now + 21} 3")) == 3.0  # ... but count for others (a: now+21)
    data = json.loads((private_state_home / "last-start").read_text())
    assert len(data) == 3


def test_stagger_ignores_junk_and_clock_jumps(private_state_home: Path) -> None:
    now = 1_900_000_000.0
    private_state_home.mkdir(parents=True)
    (private_state_home / "last-start").write_text("{torn")
    assert WorkerSlots(None, private_state_home).stagger_delay(now) == 0.0
    far = {"x:1": now + 10 * 86400, "y:2": now - 86400}  # from a wrong clock, and stale
    (private_state_home / "last-start").write_text(json.dumps(far))
    assert WorkerSlots(None, private_state_home).stagger_delay(now) == 0.0


def test_two_daemons_share_one_slot(
    repos: list[Path], hermetic_env: dict[str, str], fake_claude
) -> None:
    """max_parallel_workers = 1 in the user config: the second run waits for the first."""
    from tests.conftest import read_state, run_cli, wait_for

    config = Path(hermetic_env["XDG_CONFIG_HOME"]) / "unattended" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("max_parallel_workers = 1\n")
    fake_claude.script([[{"do": "sleep", "seconds": 30}, "text"]])
    fast = ["--grace-seconds", "2", "--allowed-tools", "Bash"]
    first, second = repos[0], repos[1]
    assert run_cli(["start", *fast], hermetic_env, cwd=first).returncode == 0
    assert wait_for(lambda: read_state(first)["status"] == "running", 30)
    assert run_cli(["start", *fast], hermetic_env, cwd=second).returncode == 0
    log = second / ".unattended" / "run.log"
    assert wait_for(lambda: "waiting for a worker slot" in log.read_text(), 15)
    assert read_state(second)["status"] == "waiting" and read_state(second)["iteration"] == 0
    assert len(fake_claude.calls()) == 1
    stop = ["stop", "--now", "--wait", "--timeout", "30"]
    assert run_cli(stop, hermetic_env, cwd=first).returncode == 0
    assert wait_for(lambda: read_state(second)["status"] == "running", 30), log.read_text()
    assert run_cli(stop, hermetic_env, cwd=second).returncode == 0
