"""``python -m unattended``: the same entry point as the ``unattended`` command."""

from unattended.supervisor.cli.entry import main

raise SystemExit(main())
