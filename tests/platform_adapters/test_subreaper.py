"""Child subreaper with real processes: an orphaned grandchild is re-parented to us, not PID 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, os, subprocess, sys, time
from unattended.platform_adapters.proctree import become_subreaper, is_subreaper
before = is_subreaper()
took = become_subreaper() if sys.argv[1] == "on" else False
# sh starts a sleep in the background and exits at once: the sleep is orphaned.
orphaning = "sleep 30 >/dev/null 2>&1 & echo $!"
out = subprocess.run(["sh", "-c", orphaning], capture_output=True, text=True).stdout
orphan = int(out)
time.sleep(0.2)
with open(f"/proc/{orphan}/stat") as f:
    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
os.kill(orphan, 9)
if took:
    os.waitpid(orphan, 0)  # ours to reap now
print(json.dumps({"before": before, "took": took, "now": is_subreaper(),
                  "me": os.getpid(), "ppid": ppid}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux")
@pytest.mark.parametrize("mode", ["on", "off"])
def test_orphans_come_to_the_subreaper(mode: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    facts = json.loads(done.stdout)
    assert facts["before"] is False
    if mode == "on":
        assert facts["took"] is True and facts["now"] is True
        assert facts["ppid"] == facts["me"]
    else:
        assert facts["now"] is False
        assert facts["ppid"] != facts["me"]  # without it the orphan escapes to init


REAPING = """
import json, os, subprocess, sys, time
from unattended.platform_adapters import proctree
proctree.become_subreaper()
nothing = proctree.reap_orphans()  # no child has exited
# A child whose exit status is its owner's (a helper or the worker), exited before the orphan.
owned = subprocess.Popen(["false"])
proctree.protect(owned.pid)
os.waitid(os.P_PID, owned.pid, os.WEXITED | os.WNOWAIT)
out = subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"],
                     capture_output=True, text=True).stdout
orphan = int(out)
os.kill(orphan, 9)
while open(f"/proc/{orphan}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
    time.sleep(0.01)
reaped = proctree.reap_orphans()
owned_status = os.waitstatus_to_exitcode(os.waitpid(owned.pid, 0)[1])  # ECHILD if taken
print(json.dumps({"nothing": nothing, "reaped": reaped, "orphan": orphan,
                  "owned": owned_status}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux")
def test_reaping_orphans_takes_the_adopted_zombie_and_leaves_an_owned_one() -> None:
    done = subprocess.run(
        [sys.executable, "-c", REAPING],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    facts = json.loads(done.stdout)
    assert facts["nothing"] == []
    assert facts["reaped"] == [facts["orphan"]]
    assert facts["owned"] == 1  # its exit status was left to its owner
