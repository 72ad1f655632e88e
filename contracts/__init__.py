"""What the world sees: models of every on-disk and on-wire format.

Imports nothing of ours. Changing a file format starts here. Submodules are imported directly
(``from contracts.state import RunState``) so that import-light callers pay only for what they use.
"""
