"""unattended: a supervisor daemon that keeps a Claude Code worker busy on a git repository
overnight, and stops it safely.

The repository keeps the design card's folders at its top (``supervisor/``, ``safety/``,
``platform_adapters/``, ``contracts/``); installed, they are subpackages of this one package.
From a checkout (``PYTHONPATH`` or the context-meter hook's ``python -I -S``), the folders next
to this one serve as its subpackages. Nothing is imported here: the hook pays for every import.
"""

import os as _os

__version__ = "0.1.0"

_here = _os.path.dirname(_os.path.abspath(__file__))
if not _os.path.isdir(_os.path.join(_here, "supervisor")):  # a checkout, not a wheel
    __path__.append(_os.path.dirname(_here))  # type: ignore[name-defined]  # noqa: F821
