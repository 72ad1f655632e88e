"""Run the daemon under launchd so that only a crash restarts it: `python -m` this, then argv.

launchd can only restart a job on any non-zero exit (`KeepAlive = {SuccessfulExit = false}`);
it has nothing like systemd's `RestartPreventExitStatus=`. Our deliberate ends exit 2-7
(preflight, capped, blocked, stuck, stopped, failed), and a restart with `--resume-or-start`
after such an end begins a new run: a capped run would start over every day, a blocked one
every minute.
This shim runs the daemon as its child, passes on the signals launchd sends, and exits 0 for
the deliberate codes, so launchd restarts the job only after exit 1 (a bug) or a death by signal.
Stdlib only, imported by nothing else.
"""

from __future__ import annotations

import signal
import subprocess
import sys

DELIBERATE = frozenset(range(2, 8))
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def exit_code_for_launchd(code: int) -> int:
    """0 for a deliberate end; the daemon's code for a bug; 128+N for a death by signal N."""
    if code < 0:
        return 128 - code
    return 0 if code in DELIBERATE else code


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        usage = "usage: python -m unattended.platform_adapters.launchd_shim COMMAND [ARGS...]"
        print(usage, file=sys.stderr)
        return 2
    # Same process group as us, so launchd's clean-up of the job's group still reaches it.
    proc = subprocess.Popen(argv)

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    return exit_code_for_launchd(proc.wait())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
