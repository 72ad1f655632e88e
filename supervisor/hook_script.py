"""``python -I -S .../supervisor/hook_script.py``: the context-meter hook's fastest entry.

``-I`` keeps the worker's directory (the hook's cwd) and ``PYTHON*`` variables off the import
path, so a project's own ``json.py`` or ``supervisor/`` cannot shadow ours; ``-S`` skips
``site`` (an editable install's finder alone costs ~15 ms). The packages next to this one are
appended to ``sys.path`` (after the standard library); a stub, so the real module's bytecode is
cached instead of being compiled on every call as a script's would be.
"""

import os
import sys

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from supervisor.hook_fast import run_hook  # noqa: E402

raise SystemExit(run_hook(sys.argv[1:]))
