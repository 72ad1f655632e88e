"""Git as evidence and as a safety net: facts gathered once per iteration, work-tree
snapshots under ``refs/unattended/``, and restoring one onto a new branch.
"""
