"""Pure decision rules: observed facts in, a :class:`~unattended.safety.verdict.Verdict` with a
human reason out. No I/O, no clock, no randomness: ``supervisor`` gathers the facts and acts
on the verdict.

- ``markers``: the worker's ``UNATTENDED_DONE`` / ``UNATTENDED_BLOCKED: reason`` lines;
- ``api_errors``: what API trouble ended a worker (structured fields, then the CLI's wording);
- ``classify``: one iteration's outcome, fatal conditions, crashes, failure fingerprints;
- ``gutter``: the no-progress / same-failure / crash / denial streaks and the graded note;
- ``limits``, ``backoff``: caps, run facts, backoffs, the storm breaker, WAIT-or-CAPPED;
- ``decide``: the verdict after an iteration; it re-exports the verdict API the loop uses;
- ``gate``: may the next worker start (runway, quota pacing, storm breaker);
- ``runway``, ``budget``, ``preflight``: estimates, budget arithmetic, checks before a run;
- ``bands``: the context band rule, shared with the context-meter hook (imports nothing);
- ``session``: resume the last session or start fresh.

``supervisor`` imports ``decide``, ``verdict``, ``runway``, ``session``, ``budget``, ``bands``
and ``preflight``; ``tests/architecture`` keeps this package free of I/O.
"""
