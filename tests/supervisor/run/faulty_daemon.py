"""`unattended start --foreground ARGS...` with one fault injected, for tests of what happens
when the daemon fails: ``python faulty_daemon.py FAULT TRIGGER_FILE ARGS...``.

FAULT ``tick``: the first tick after TRIGGER_FILE exists (a worker's tool wrote its pid there)
raises an unexpected exception, as a bug in the loop would.
"""

from __future__ import annotations

import sys
from pathlib import Path

from unattended.supervisor.run import control


def main() -> int:
    fault, trigger, *args = sys.argv[1:]
    if fault == "tick":
        applied = control.apply_pending

        def apply_pending(*a, **kw):  # noqa: ANN002, ANN003, ANN202 - a stand-in
            if Path(trigger).exists():
                raise RuntimeError("injected fault")
            return applied(*a, **kw)

        control.apply_pending = apply_pending
    from unattended.supervisor.cli.entry import main as entry

    return entry(["start", "--foreground", *args])


if __name__ == "__main__":
    sys.exit(main())
