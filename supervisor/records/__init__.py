"""The files a run leaves: atomic writes, state.json and liveness, run.log and events,
telemetry lines, steps, the budget ledger, and the tolerant readers the views use.
"""
