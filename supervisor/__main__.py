"""``python -m supervisor``: the same entry point as the ``unattended`` command."""

from supervisor.entry import main

raise SystemExit(main())
