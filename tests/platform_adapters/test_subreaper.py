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
