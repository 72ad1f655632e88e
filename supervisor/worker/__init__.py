"""One worker process: its argv and environment, the settings file with our hook, spawning
it, reading its stream-json in bounded memory, its raw log, and its transcript on disk.
"""
