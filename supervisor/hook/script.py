"""``python -I -S .../supervisor/hook/script.py``: the context-meter hook's fastest entry.

``-I`` keeps the worker's directory (the hook's cwd) and ``PYTHON*`` variables off the import
path, so a project's own ``json.py`` or ``unattended/`` cannot shadow ours; ``-S`` skips
``site`` (an editable install's finder alone costs ~15 ms). The directory that holds the
``unattended`` package is appended to ``sys.path`` (after the standard library): in a wheel
that is site-packages (this file is ``unattended/supervisor/hook/script.py``), in a checkout the
repository's top (``supervisor/hook/script.py`` beside ``unattended/``). A stub, so the real
module's bytecode is cached instead of being compiled on every call as a script's would be.
"""

import os
import sys

_package_or_checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.isfile(os.path.join(_package_or_checkout, "__init__.py")):  # .../unattended: a wheel
    _package_or_checkout = os.path.dirname(_package_or_checkout)
sys.path.append(_package_or_checkout)

from unattended.supervisor.hook.meter import run_hook  # noqa: E402

raise SystemExit(run_hook(sys.argv[1:]))
