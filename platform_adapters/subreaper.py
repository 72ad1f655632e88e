"""Make the daemon a child subreaper, so tool processes that detach from a worker stay findable.

The Claude Code CLI starts Bash tool commands in sessions of their own; when a worker's process
tree is torn apart, orphans would be re-parented to PID 1 and escape the tree kill. As a child
subreaper (Linux >= 3.4) the daemon inherits them instead, and must reap them.
"""

from __future__ import annotations

import ctypes
import sys

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def _prctl(option: int, arg2: object) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, arg2, 0, 0, 0))


def become_child_subreaper() -> bool:
    """PR_SET_CHILD_SUBREAPER on Linux; True on success, False elsewhere or when refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return _prctl(PR_SET_CHILD_SUBREAPER, 1) == 0
    except (OSError, AttributeError):
        return False


def is_child_subreaper() -> bool:
    """Whether this process is a child subreaper (Linux only; False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    flag = ctypes.c_int(0)
    try:
        if _prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag)) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return flag.value != 0


# The name supervisor/proctree.py looks for.
become_subreaper = become_child_subreaper
