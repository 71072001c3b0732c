"""Redirection of device-taking entry points, one module per kind of entry point.

Each module has ``patches(session) -> list[Patch]``; the activation applies them all through one Patcher.
"""
