"""The kernel: settings, errors, spans, telemetry, the principal and the security primitives.

It imports nothing of ours, so every other floor may build on it (setup.cfg's layers contract).
"""
