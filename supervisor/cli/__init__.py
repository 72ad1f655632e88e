"""The command line: the root app (``app``), the helpers every command shares (``common``),
and one module per command. Nothing imports the root app but the entry point.
"""
