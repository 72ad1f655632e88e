"""The context meter: runs after every tool call of every worker under ``python -I -S``, so it
imports only the standard library and ``contracts`` modules that do the same.
"""
