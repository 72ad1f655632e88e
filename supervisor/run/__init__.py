"""One run of the daemon: its lifecycle (detach, readiness, lock, pid, signals), the relay
loop, one iteration as named stages, the tick, settings, preflight facts, the prompt, live
control, worker slots and the per-user registry.
"""
