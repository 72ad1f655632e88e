"""Names the world sees, each spelled once: the state directory, its files that more than one
process reads, the ``UNATTENDED_*`` environment variables and the worker's report markers.

Plain strings and no imports: the context-meter hook (``python -I -S``, after every tool call)
imports this module too.
"""

STATE_DIR_NAME = ".unattended"
LOCK_FILE_NAME = "unattended.lock"  # in the git dir, out of a worker's `git clean` reach
METER_FILE_NAME = "context-meter.json"
METER_LOCK_NAME = ".context-meter.lock"
HANDOFF_FILE_NAME = "handoff.md"

# The worker's two report lines (only in the text of a `result` event).
DONE_MARKER = "UNATTENDED_DONE"
BLOCKED_MARKER = "UNATTENDED_BLOCKED"
MARKER_PREFIX = "UNATTENDED_"

# Set by the daemon in every worker's environment (and so in its tools' and the hook's).
ENV_PROJECT = "UNATTENDED_PROJECT"
ENV_RUN_ID = "UNATTENDED_RUN_ID"
ENV_ITERATION = "UNATTENDED_ITERATION"
ENV_STATE_DIR = "UNATTENDED_STATE_DIR"
ENV_RECORDS_DIR = "UNATTENDED_RECORDS_DIR"  # the git dir's .unattended: the raw logs
ENV_CONTEXT_WINDOW = "UNATTENDED_CONTEXT_WINDOW"
ENV_WARN_PCT = "UNATTENDED_CONTEXT_WARN_PCT"
ENV_STOP_PCT = "UNATTENDED_CONTEXT_STOP_PCT"
ENV_CONTEXT_SOURCE = "UNATTENDED_CONTEXT_SOURCE"
ENV_DEADLINE = "UNATTENDED_DEADLINE"  # the run's deadline at spawn, epoch seconds
ENV_DEADLINE_WARN_S = "UNATTENDED_DEADLINE_WARN_S"  # tell the worker this long before it
ENV_WINDOW_PINNED = "UNATTENDED_CONTEXT_WINDOW_PINNED"  # "1": the user's context_window setting

# Read from the user's environment.
ENV_CLAUDE_BIN = "UNATTENDED_CLAUDE_BIN"

# Given to a `--notify-cmd` command.
ENV_NOTIFY_STATUS = "UNATTENDED_STATUS"
ENV_NOTIFY_REASON = "UNATTENDED_REASON"
ENV_NOTIFY_COST = "UNATTENDED_COST_USD"
ENV_NOTIFY_SUMMARY = "UNATTENDED_SUMMARY"

# The demo's stub worker.
ENV_DEMO_STEPS = "UNATTENDED_DEMO_STEPS"
