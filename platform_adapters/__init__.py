"""Everything that differs per OS and talks to it: sleep inhibitors, notifications,
sd_notify, service units, and the one process module through which subprocesses start (timeouts,
process groups, tree kill, the subreaper).
"""
